"""Settings: the embedded default, production's refusals, the deploy checklist."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db.backends.sqlite3.base import DatabaseWrapper

from crm.settings.base import _tune_database

ROOT = Path(__file__).resolve().parent.parent.parent


def run_manage(*args, env=None):
    clean = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "CRM_EMAIL_HASH_KEY", "DATABASE_URL", "TEST_DATABASE_URL")}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_refuses_to_start_without_a_secret_key():
    result = run_manage("check", env={"DJANGO_SETTINGS_MODULE": "crm.settings.production", "DJANGO_ALLOWED_HOSTS": "crm.example.com"})
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


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
