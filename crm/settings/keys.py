"""The secret keys written in this repository, and the rule production holds SECRET_KEY to.

Anyone who knows the key can sign what the app trusts (sessions, unsubscribe
links), so production refuses a key that is in these files, and one too weak
to be secret. Not a settings module: local.py, test.py and production.py read it.
"""

from django.core.exceptions import ImproperlyConfigured

LOCAL_SECRET_KEY = "local-development-only-not-secret"
TEST_SECRET_KEY = "test-only-not-secret"
# Also committed: docker-compose.yml's old default and .env.example's placeholder.
COMMITTED_SECRET_KEYS = frozenset({LOCAL_SECRET_KEY, TEST_SECRET_KEY, "change-me-in-production", "replace-with-a-long-random-value"})

# Django's own thresholds for a key (check --deploy, security.W009).
MIN_LENGTH = 50
MIN_UNIQUE_CHARACTERS = 5
INSECURE_PREFIX = "django-insecure-"

HOW_TO_MAKE_ONE = "Generate one with python -c 'import secrets; print(secrets.token_urlsafe(50))' and set SECRET_KEY to it."


def check_production_secret_key(key: str) -> None:
    """Raise ImproperlyConfigured, saying what is wrong and how to fix it, unless `key` can sign for production."""
    if not key:
        problem = "SECRET_KEY is not set."
    elif key in COMMITTED_SECRET_KEYS:
        problem = "SECRET_KEY is a value written in this project's files, so anyone can forge sessions and links with it."
    elif key.startswith(INSECURE_PREFIX):
        problem = f"SECRET_KEY starts with {INSECURE_PREFIX!r}: Django made it for development."
    elif len(key) < MIN_LENGTH or len(set(key)) < MIN_UNIQUE_CHARACTERS:
        problem = (
            f"SECRET_KEY is too weak: it needs at least {MIN_LENGTH} characters and {MIN_UNIQUE_CHARACTERS} different "
            f"ones (it has {len(key)} characters, {len(set(key))} different)."
        )
    else:
        return
    raise ImproperlyConfigured(f"{problem} {HOW_TO_MAKE_ONE}")
