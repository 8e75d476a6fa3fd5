from django.contrib import admin
from django.urls import path

from . import views

admin.site.site_header = "Lead nurturing CRM"
admin.site.site_title = "CRM admin"
admin.site.index_title = "Pipeline and records"

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
]
