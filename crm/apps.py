from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.contrib.admin.checks import check_admin_app, check_dependencies
from django.core import checks


class CrmConfig(AppConfig):
    default = True  # "crm" in INSTALLED_APPS: this module holds the admin's and anymail's configs too
    name = "crm"
    verbose_name = "CRM operations"
    default_auto_field = "django.db.models.BigAutoField"


def check_admin_app_discovered(app_configs, **kwargs):
    """The admin's own checks of every ModelAdmin, once they are loaded: the checks framework runs its checks in
    no set order, so this one may come before the URL check that loads them."""
    from django.contrib import admin

    admin.autodiscover()
    return check_admin_app(app_configs, **kwargs)


class AdminConfig(admin_apps.SimpleAdminConfig):
    """The admin, its ModelAdmins (every app's admin.py) loaded with the URLs: crm.urls calls `autodiscover()`.

    Django's default config loads them at start in every process. A Celery worker or beat never serves a page,
    and the admin modules with their forms cost each of its processes about 2 MB. The web entry points
    (crm.wsgi, crm.asgi) load the URLs at start, so the first request does not wait for them.
    """

    default = False

    def ready(self):
        checks.register(check_dependencies, checks.Tags.admin)
        checks.register(check_admin_app_discovered, checks.Tags.admin)


def check_anymail_settings(app_configs, **kwargs):
    from anymail.checks import check_deprecated_settings, check_insecure_settings

    return check_deprecated_settings(app_configs, **kwargs) + check_insecure_settings(app_configs, **kwargs)


class AnymailConfig(AppConfig):
    """anymail, its settings checks imported when the checks run.

    anymail's own config imports them at start, and with them `requests` (with urllib3 and charset_normalizer):
    about 3 MB in every process, a worker's pool processes included, where nothing else uses it. A provider's
    backend still imports it when a worker first sends through that provider.
    """

    default = False
    name = "anymail"
    verbose_name = "Anymail"

    def ready(self):
        checks.register(check_anymail_settings)
