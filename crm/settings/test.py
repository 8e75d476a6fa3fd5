"""Test settings: fast hashing, in-memory email, tasks run in-process.

`TEST_DATABASE_URL` points the suite at PostgreSQL; without it, SQLite.
"""

from .base import *  # noqa: F403
from .base import _tune_database, env
from .keys import TEST_SECRET_KEY

SECRET_KEY = TEST_SECRET_KEY
DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# In memory by default; the integration tests point a real worker at a real
# SMTP server on loopback with TEST_EMAIL_BACKEND and EMAIL_URL.
EMAIL_BACKEND = env.str("TEST_EMAIL_BACKEND", default="django.core.mail.backends.locmem.EmailBackend")
STORAGES["staticfiles"] = {  # noqa: F405
    "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
}

if env.str("TEST_DATABASE_URL", default=""):
    DATABASES = {"default": _tune_database(env.db("TEST_DATABASE_URL"))}
else:
    DATABASES = {
        "default": _tune_database(
            {"ENGINE": "django.db.backends.sqlite3", "NAME": str(VAR_DIR / "test.sqlite3")}  # noqa: F405
        )
    }
    DATABASES["default"]["TEST"] = {"NAME": ""}  # in memory

# Unit tests run tasks inline; the integration tests start a real worker.
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=True)
CELERY_TASK_EAGER_PROPAGATES = True
# Serve static files straight from the apps (no collectstatic needed).
WHITENOISE_AUTOREFRESH = True
WHITENOISE_USE_FINDERS = True
# A test that renders past the length limit must not first run out of time (2 s)
# on a slow or busy machine; the tests of the time limit set their own.
CRM_NURTURE_RENDER_MAX_SECONDS = 10.0
# Captures are written in the request in the unit tests (the queue's own tests set it).
CRM_CAPTURE_QUEUE_URL = env.str("CRM_CAPTURE_QUEUE_URL", default="inline")
# Outbound webhooks' tasks stay on the default queue: the integration tests' worker serves one queue of its own.
CRM_WEBHOOKS_QUEUE = env.str("CRM_WEBHOOKS_QUEUE", default=CELERY_TASK_DEFAULT_QUEUE)  # noqa: F405
CELERY_TASK_ROUTES = {"outbound.tasks.*": {"queue": CRM_WEBHOOKS_QUEUE}}  # imports too: the default queue
