import os

from django.core.wsgi import get_wsgi_application

# The entry points of a deployment run production settings unless told otherwise;
# development goes through manage.py, whose default is crm.settings.local.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings.production")
application = get_wsgi_application()
