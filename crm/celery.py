"""The Celery app. Workers and beat start with `python -m crm.celeryd worker|beat` (or `celery -A crm …`).

Like the WSGI app, they run production settings unless DJANGO_SETTINGS_MODULE
says otherwise (`make run` starts them with crm.settings.local).
"""

import os

from celery import Celery
from celery.signals import worker_before_create_process, worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings.production")
# Celery's Django fixup runs Django's system checks when a worker or beat starts, and ignores what they find;
# the URL checks import crm.urls and through it every view (REST framework, drf-spectacular, the email
# providers' webhooks with boto3, icalendar, the reports...): about 30 MB more in every worker process, the
# pool's included. They are reported where they count: `manage.py check --deploy`, and the commands that run
# them first (migrate, runserver). CELERY_SKIP_CHECKS= (empty) runs them in the worker again.
os.environ.setdefault("CELERY_SKIP_CHECKS", "1")

app = Celery("crm")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def worker_urlconf(**kwargs):
    """A worker builds the links it writes (emails, notifications) with crm.worker_urls: the same routes as
    crm.urls for them, without importing a view. Loaded in the parent, before the pool is forked: shared."""
    from django.conf import settings
    from django.urls import clear_url_caches, get_resolver

    settings.ROOT_URLCONF = "crm.worker_urls"
    clear_url_caches()
    get_resolver().reverse_dict  # noqa: B018  (builds the reverse lookup now)


@worker_before_create_process.connect
def share_with_pool(**kwargs):
    """Just before the worker forks a pool process: its objects are frozen (gc.freeze), so a pool process's
    garbage collections leave the pages it shares with the worker alone instead of copying them (about 25 MB
    less PSS for two pool processes). Collected first, so no garbage is kept frozen."""
    import gc

    gc.collect()
    gc.freeze()
