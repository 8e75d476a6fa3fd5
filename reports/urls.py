from django.urls import path

from . import views

app_name = "reports"

urlpatterns = [
    path("reports/", views.dashboard, name="dashboard"),
    path("reports/figures/<slug:key>/", views.figure_rows, name="figure"),
]
