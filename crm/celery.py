"""The Celery app. Workers and beat start with `celery -A crm worker|beat`.

Like the WSGI app, they run production settings unless DJANGO_SETTINGS_MODULE
says otherwise (`make run` starts them with crm.settings.local).
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings.production")

app = Celery("crm")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
