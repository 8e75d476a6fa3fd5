"""Settings: the embedded default, production's refusals, the deploy checklist."""

import os
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.db.backends.sqlite3.base import DatabaseWrapper

from crm.settings.base import _tune_database

ROOT = Path(__file__).resolve().parent.parent.parent
PRODUCTION = {"DJANGO_SETTINGS_MODULE": "crm.settings.production", "DJANGO_ALLOWED_HOSTS": "crm.example.com"}


def clean_environ():
    return {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "CRM_EMAIL_HASH_KEY", "DATABASE_URL", "TEST_DATABASE_URL", "DJANGO_SETTINGS_MODULE")}


def run_manage(*args, env=None):
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean_environ(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def run_python(code, env):
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env={**clean_environ(), **env}, capture_output=True, text=True, timeout=120
    )


def test_production_refuses_to_start_without_a_secret_key():
    result = run_manage("check", env=PRODUCTION)
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def env_example_secret_key():
    return re.search(r"^# SECRET_KEY=(.+)$", (ROOT / ".env.example").read_text(), re.MULTILINE).group(1)


@pytest.mark.parametrize(
    ("key", "says"),
    [
        ("local-development-only-not-secret", "written in this project's files"),
        ("test-only-not-secret", "written in this project's files"),
        ("change-me-in-production", "written in this project's files"),
        (env_example_secret_key(), "written in this project's files"),
        ("django-insecure-" + "aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1eF3hJ5kL7nP9", "starts with 'django-insecure-'"),
        ("aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1eF3hJ5kL7nP9rS1", "too weak: it needs at least 50 characters"),
        ("abcdabcdab" * 6, "5 different ones (it has 60 characters, 4 different)"),
    ],
    ids=["local-default", "test-key", "compose-default", "env-example", "django-insecure", "short", "few-characters"],
)
def test_production_refuses_a_secret_key_anybody_could_know_or_guess(key, says):
    result = run_manage("check", env={**PRODUCTION, "SECRET_KEY": key})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and says in result.stderr
    assert "secrets.token_urlsafe(50)" in result.stderr
    assert key not in result.stderr.replace("ImproperlyConfigured", "")  # a key is never echoed into logs


@pytest.mark.parametrize("module", ["crm.wsgi", "crm.celery"])
def test_the_wsgi_app_and_celery_run_production_settings_unless_told_otherwise(module):
    code = f"import {module}; from django.conf import settings; print(settings.SETTINGS_MODULE, settings.DEBUG)"
    refused = run_python(code, {"DJANGO_ALLOWED_HOSTS": "crm.example.com"})
    assert refused.returncode != 0 and "SECRET_KEY is not set" in refused.stderr

    started = run_python(code, {"DJANGO_ALLOWED_HOSTS": "crm.example.com", "SECRET_KEY": secrets.token_urlsafe(50),
                                "CRM_EMAIL_HASH_KEY": secrets.token_urlsafe(32)})
    assert started.stdout.split() == ["crm.settings.production", "False"], started.stderr


@pytest.mark.parametrize("name", ["SECRET_KEY", "CRM_EMAIL_HASH_KEY"])
def test_docker_compose_has_no_default_key_and_still_validates(tmp_path, name):
    # Blank unless the shell or .env sets it, so production refuses to start (and
    # says how to make one) rather than running on a value written in this file.
    compose = (ROOT / "docker-compose.yml").read_text()
    assert re.search(rf"^\s+{name}: \$\{{{name}:-\}}$", compose, re.MULTILINE), f"{name} must default to blank"
    if shutil.which("docker-compose") is None:
        return  # the text above is what can be checked without compose
    env = {k: v for k, v in clean_environ().items() if not k.startswith("COMPOSE_")}
    command = ["docker-compose", "--project-directory", str(ROOT), "-f", str(ROOT / "docker-compose.yml"), "config"]
    rendered = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert rendered.returncode == 0, rendered.stderr
    assert re.search(rf"^\s+{name}: ''$", rendered.stdout, re.MULTILINE), rendered.stdout


def test_production_refuses_to_start_without_a_key_for_address_hashes():
    result = run_manage("check", env={
        "DJANGO_SETTINGS_MODULE": "crm.settings.production", "DJANGO_ALLOWED_HOSTS": "crm.example.com",
        "SECRET_KEY": "x7-" + "k" * 20 + "Qz9!pL0_wR4#mN8$tY2^vB6&cX1*" + "j" * 10,
    })
    assert result.returncode != 0
    assert "ImproperlyConfigured: CRM_EMAIL_HASH_KEY is not set" in result.stderr


def test_the_deploy_checklist_is_clean_with_production_settings(tmp_path):
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        env={
            "DJANGO_SETTINGS_MODULE": "crm.settings.production",
            "SECRET_KEY": "x7-" + "k" * 20 + "Qz9!pL0_wR4#mN8$tY2^vB6&cX1*" + "j" * 10,
            "CRM_EMAIL_HASH_KEY": "hash-" + "q" * 20 + "Zr8!wT1_eY5#uI9$oP3^aS7&dF2*",
            "DJANGO_ALLOWED_HOSTS": "crm.example.com",
            "CRM_VAR_DIR": str(tmp_path),
            "CRM_SITE_URL": "https://crm.example.com",
            "CRM_POSTAL_ADDRESS": "Acme GmbH, Hauptstr. 1, 10115 Berlin",
            "CRM_TRACKING_SITES": "www.example.com,.example.com",
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_the_deploy_checklist_asks_for_the_postal_address_and_an_https_site(tmp_path):
    result = run_manage(
        "check",
        "--deploy",
        env={
            "DJANGO_SETTINGS_MODULE": "crm.settings.production",
            "SECRET_KEY": "x7-" + "k" * 20 + "Qz9!pL0_wR4#mN8$tY2^vB6&cX1*" + "j" * 10,
            "CRM_EMAIL_HASH_KEY": "hash-" + "q" * 20 + "Zr8!wT1_eY5#uI9$oP3^aS7&dF2*",
            "DJANGO_ALLOWED_HOSTS": "crm.example.com",
            "CRM_VAR_DIR": str(tmp_path),
        },
    )
    assert "nurturing.W001" in result.stderr + result.stdout and "nurturing.W002" in result.stderr + result.stdout
    assert "traffic.W001" in result.stderr + result.stdout  # page views accepted from any site


def test_sqlite_runs_in_wal_mode_with_immediate_transactions(tmp_path, django_db_blocker):
    settings_dict = _tune_database({"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp_path / "wal.sqlite3")})
    wrapper = DatabaseWrapper({**settings_dict, "TIME_ZONE": None, "CONN_MAX_AGE": 0, "CONN_HEALTH_CHECKS": False,
                               "AUTOCOMMIT": True, "ATOMIC_REQUESTS": False, "USER": "", "PASSWORD": "", "HOST": "", "PORT": "", "TEST": {}})
    try:
        with django_db_blocker.unblock(), wrapper.cursor() as cursor:
            cursor.execute("PRAGMA journal_mode")
            assert cursor.fetchone()[0] == "wal"
            cursor.execute("PRAGMA foreign_keys")
            assert cursor.fetchone()[0] == 1
        assert wrapper.transaction_mode == "IMMEDIATE"
    finally:
        wrapper.close()


def test_the_embedded_default_needs_no_services(monkeypatch):
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "EMAIL_URL", "EMAIL_BACKEND"):
        monkeypatch.delenv(name, raising=False)
    result = subprocess.run(
        [sys.executable, "-c", (
            "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='crm.settings.local'; django.setup();"
            "from django.conf import settings as s;"
            "print(s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL, s.EMAIL_BACKEND)"
        )],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "EMAIL_URL", "EMAIL_BACKEND")},
    )
    assert result.stdout.split() == [
        "django.db.backends.sqlite3", "filesystem://", "django.core.mail.backends.filebased.EmailBackend"
    ], result.stderr


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"DATABASE_URL": "postgres://crm:pw@db.internal:5432/crm"}, "django.db.backends.postgresql db.internal"),
        ({"EMAIL_BACKEND": "anymail.backends.postmark.EmailBackend", "ANYMAIL_POSTMARK_SERVER_TOKEN": "t0k"},
         "anymail.backends.postmark.EmailBackend t0k"),
        ({"EMAIL_URL": "smtp+tls://u:p@smtp.example.com:587"}, "django.core.mail.backends.smtp.EmailBackend smtp.example.com"),
    ],
    ids=["postgres", "anymail", "smtp"],
)
def test_the_environment_switches_database_and_email_with_no_code_change(env, expected):
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='crm.settings.local'; django.setup();"
        "from django.conf import settings as s;"
        "db=s.DATABASES['default'];"
        "print(db['ENGINE'], db['HOST']) if 'DATABASE_URL' in os.environ else "
        "print(s.EMAIL_BACKEND, s.ANYMAIL.get('POSTMARK_SERVER_TOKEN') or s.EMAIL_HOST)"
    )
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "EMAIL_URL", "EMAIL_BACKEND")}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, env={**base, **env})
    assert result.stdout.strip() == expected, result.stderr


def test_anymails_timeout_and_switches_from_the_environment_are_numbers_and_booleans():
    code = (
        "import django; django.setup(); from django.conf import settings as s;"
        "a = s.ANYMAIL; print(repr(a['REQUESTS_TIMEOUT']), a['DEBUG_API_REQUESTS'], a['IGNORE_RECIPIENT_STATUS'],"
        " a['POSTMARK_SERVER_TOKEN'], a['AMAZON_SES_CLIENT_PARAMS']['config']['retries']['total_max_attempts'])"
    )
    env = {"DJANGO_SETTINGS_MODULE": "crm.settings.local", "ANYMAIL_REQUESTS_TIMEOUT": "7.5", "ANYMAIL_DEBUG_API_REQUESTS": "False",
           "ANYMAIL_IGNORE_RECIPIENT_STATUS": "true", "ANYMAIL_POSTMARK_SERVER_TOKEN": "0123"}
    result = run_python(code, env)
    assert result.stdout.split() == ["7.5", "False", "True", "0123", "1"], result.stderr


ENV_READ = re.compile(r"""\b(?:env|Env\(\))(?:\.\w+)?\(\s*["']([A-Z][A-Z0-9_]*)["']""")
# Read through the ANYMAIL_ prefix rather than by name; the webhooks refuse every call without it.
ENV_BY_PREFIX = {"ANYMAIL_WEBHOOK_SECRET"}


def test_env_example_lists_every_variable_the_settings_read():
    read = {name for source in (ROOT / "crm" / "settings").glob("*.py") for name in ENV_READ.findall(source.read_text())}
    listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", (ROOT / ".env.example").read_text(), flags=re.MULTILINE))

    assert len(read) > 30  # the pattern still finds the settings' reads
    assert sorted((read | ENV_BY_PREFIX) - listed) == []


def test_login_limits_and_the_proxy_count_come_from_the_environment():
    code = (
        "import django; django.setup(); from django.conf import settings as s;"
        "print(s.SESSION_COOKIE_AGE, s.AXES_FAILURE_LIMIT, int(s.AXES_COOLOFF_TIME.total_seconds()),"
        " ','.join(s.AXES_IPWARE_META_PRECEDENCE_ORDER), s.AXES_IPWARE_PROXY_COUNT, s.IPWARE_STRICT)"
    )
    env = {"DJANGO_SETTINGS_MODULE": "crm.settings.local", "DJANGO_SESSION_COOKIE_AGE": "3600", "CRM_LOGIN_FAILURE_LIMIT": "3",
           "CRM_LOGIN_COOLOFF_MINUTES": "30", "CRM_TRUSTED_PROXIES": "1"}
    result = run_python(code, env)
    assert result.stdout.split() == ["3600", "3", "1800", "HTTP_X_FORWARDED_FOR,REMOTE_ADDR", "0", "False"], result.stderr


@pytest.mark.parametrize(
    ("env", "counted_in"),
    [
        ({"CELERY_BROKER_URL": "redis://127.0.0.1:6379/0"}, "redis://127.0.0.1:6379/0"),
        ({"CELERY_BROKER_URL": "amqp://crm@127.0.0.1:5672//"}, ""),
        ({"CELERY_BROKER_URL": "filesystem://"}, ""),
        ({"CELERY_BROKER_URL": "redis://127.0.0.1:6379/0", "CRM_RATE_LIMIT_URL": "redis://10.0.0.5:6379/3"}, "redis://10.0.0.5:6379/3"),
    ],
    ids=["celerys-redis", "rabbitmq-so-the-database", "filesystem-so-the-database", "its-own-redis"],
)
def test_rate_limits_are_counted_in_celerys_redis_by_default_or_else_in_the_database(env, counted_in):
    code = "import django; django.setup(); from django.conf import settings; print(repr(settings.CRM_RATE_LIMIT_URL))"
    unset = {k: v for k, v in clean_environ().items() if k != "CRM_RATE_LIMIT_URL"}  # set but empty would win
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={**unset, "DJANGO_SETTINGS_MODULE": "crm.settings.local", **env})
    assert result.stdout.strip() == repr(counted_in), result.stderr
