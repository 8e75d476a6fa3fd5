"""Checks of the rate limits' settings: `manage.py check` reports a backend that cannot work."""

from django.conf import settings
from django.core.checks import Error, Warning, register
from django.db import connections, router

from .models import RateCounter
from .ratelimit import is_redis_url

# INSERT ... ON CONFLICT ... RETURNING, the database backend's one statement, came in SQLite 3.35.
SQLITE_NEEDED = (3, 35, 0)


@register()
def check_rate_limit_backend(app_configs=None, **kwargs):
    url = settings.CRM_RATE_LIMIT_URL
    if is_redis_url(url):
        return []
    problems = []
    if url:
        problems.append(Warning(
            f"CRM_RATE_LIMIT_URL is {url!r}, not a redis:// URL: rate limits are counted in the database.",
            hint="Set it to a redis:// URL, or leave it empty to count in the database.",
            id="core.W001",
        ))
    connection = connections[router.db_for_write(RateCounter)]
    if connection.vendor == "sqlite" and connection.Database.sqlite_version_info < SQLITE_NEEDED:
        problems.append(Error(
            f"Rate limits counted in the database need SQLite 3.35 or newer; this Python has "
            f"{connection.Database.sqlite_version}.",
            hint="Use a Python built with a newer SQLite, PostgreSQL, or set CRM_RATE_LIMIT_URL to a redis:// URL.",
            id="core.E001",
        ))
    return problems
