import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

# The entry points of a deployment run production settings unless told otherwise;
# development goes through manage.py, whose default is crm.settings.local.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings.production")
application = get_wsgi_application()

# The URLs, and with them the admin's ModelAdmins (crm.apps.AdminConfig), loaded now: not on the first request.
get_resolver().url_patterns  # noqa: B018
