from django.urls import path

from . import views

app_name = "traffic"

urlpatterns = [
    path("t/hit", views.hit, name="hit"),
    path("t/p.gif", views.pixel, name="pixel"),
]
