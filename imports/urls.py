from django.urls import path

from . import views

app_name = "imports"

urlpatterns = [
    path("imports/", views.import_list, name="list"),
    path("imports/<int:pk>/", views.import_detail, name="detail"),
    path("imports/<int:pk>/run/", views.import_run, name="run"),
    path("imports/<int:pk>/resume/", views.import_resume, name="resume"),
    path("imports/<int:pk>/progress/", views.import_progress, name="progress"),
    path("imports/<int:pk>/rejected.csv", views.import_rejected, name="rejected"),
]
