from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from workspace.views import home

from . import views

# Problem details for an error under /api/v1/ that happens outside the API's views; the site's page elsewhere.
handler400 = "api.problems.bad_request"
handler500 = "api.problems.server_error"

# The ModelAdmins of every app: crm.apps.AdminConfig leaves them to the URLs.
admin.autodiscover()

admin.site.site_header = "Lead nurturing CRM"
admin.site.site_title = "CRM admin"
admin.site.index_title = "Pipeline and records"

urlpatterns = [
    path("", home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("metrics", views.metrics, name="metrics"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("", include("api.urls")),
    path("", include("traffic.urls")),
    path("", include("capture.urls")),
    path("", include("nurturing.urls")),
    path("", include("imports.urls")),
    path("", include("reports.urls")),
    path("", include("workspace.urls")),
    path("", include("studio.urls")),
    path("", include("notifications.urls")),
    path("", include("booking.urls")),
]
