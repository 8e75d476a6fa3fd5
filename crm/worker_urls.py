"""The Celery workers' URLconf: the pages whose links tasks write into emails and notifications.

A task builds a link with reverse() and never answers a request, so a worker needs the routes, not the
views. crm.urls imports every view and with them REST framework, drf-spectacular (and through it
django.test, Jinja2 and Pygments), the email providers' webhook views (boto3, botocore, cryptography),
icalendar and the reports: about 30 MB in every worker process. crm.celery points a worker's ROOT_URLCONF
here.

tests/crm/test_worker_urls.py keeps it right: each route here is the one crm.urls has under the same name,
and every name reversed by a module a task or a signal handler can reach (imports followed from each app's
tasks and apps modules) is here. A name missing here would be a NoReverseMatch in the worker.
"""

from django.http import HttpResponseNotFound
from django.urls import include, path


def not_served(request, *args, **kwargs):
    """A worker answers no request: crm.urls has the real views."""
    return HttpResponseNotFound()


booking = [
    path("book/<slug:slug>/", not_served, name="page"),  # booking.emails.rebook_url
    path("book/for/<str:token>/", not_served, name="for_lead"),  # booking.links: {{ links.book_demo }}
    path("booking/<str:token>/", not_served, name="manage"),  # booking.emails.manage_url
]
workspace = [
    path("today/", not_served, name="today"),  # notifications.services
    path("leads/<int:pk>/", not_served, name="lead_detail"),  # notifications.services, booking.emails
]

urlpatterns = [
    path("", include((booking, "booking"))),
    path("", include((workspace, "workspace"))),
]
