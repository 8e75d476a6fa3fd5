import os

from django.core.asgi import get_asgi_application

# The entry points of a deployment run production settings unless told otherwise;
# development goes through manage.py, whose default is crm.settings.local.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings.production")
application = get_asgi_application()
