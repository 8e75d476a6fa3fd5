from django.urls import include, path

from . import views
from .compose import UNSUBSCRIBE_PATH
from .webhook_views import webhook_urlpatterns

app_name = "nurturing"

urlpatterns = [
    path(f"{UNSUBSCRIBE_PATH}<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("feeds/audiences/<str:token>/", views.audience_feed, name="audience_feed"),
    # The email providers' tracking and inbound webhooks (anymail's views, made strict).
    path("webhooks/", include((webhook_urlpatterns(), "webhooks"))),
]
