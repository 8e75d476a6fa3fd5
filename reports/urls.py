from django.urls import path

from . import views

app_name = "reports"

urlpatterns = [
    path("reports/", views.report_page, name="dashboard"),
    path("reports/<slug:key>/", views.report_page, name="report"),
    path("reports/figures/<slug:key>/", views.figure_rows, name="figure"),
]
