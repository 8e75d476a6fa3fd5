from django.urls import path

from . import views

app_name = "capture"

urlpatterns = [
    path("f/<slug:slug>/", views.hosted, name="hosted"),
    path("f/<slug:slug>/submit", views.embedded, name="embedded"),
    path("f/<slug:slug>/token", views.token, name="token"),
    path("api/forms/<slug:slug>", views.api_submit, name="api_submit"),
]
