"""Production: PostgreSQL, Redis (or RabbitMQ), a real email provider, HTTPS.

Refuses to start without a strong SECRET_KEY of its own; `manage.py check --deploy` is clean.
"""

from .base import *  # noqa: F403
from .base import env
from .keys import check_production_secret_key

check_production_secret_key(SECRET_KEY)  # noqa: F405

DEBUG = False
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
# Secure cookies need HTTPS; only a local stack without TLS (compose) turns them off.
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=True)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 30)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=True)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# Suppression hashes need a key of their own: none is made up here (see .env.example).
if not CRM_EMAIL_HASH_KEY:  # noqa: F405
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        "CRM_EMAIL_HASH_KEY is not set. Set it in the environment to a long random value, kept apart from "
        "SECRET_KEY, e.g. python -c 'import secrets; print(secrets.token_urlsafe(50))'."
    )
