"""Checks of the nurturing settings: `manage.py check` (and `check --deploy` for bulk-sender rules) reports what is wrong."""

from django.conf import settings
from django.core.checks import Warning, register


@register()
def check_stale_after_outlasts_a_batch(app_configs=None, **kwargs):
    from .tasks import SEND_BATCH_TIME_LIMIT

    if settings.CRM_NURTURE_STALE_AFTER_SECONDS > SEND_BATCH_TIME_LIMIT:
        return []
    return [Warning(
        f"CRM_NURTURE_STALE_AFTER_SECONDS is {settings.CRM_NURTURE_STALE_AFTER_SECONDS}, not more than a send batch's "
        f"time limit ({SEND_BATCH_TIME_LIMIT} s): the reaper could mark unknown emails that a running batch is sending.",
        hint=f"Set CRM_NURTURE_STALE_AFTER_SECONDS above {SEND_BATCH_TIME_LIMIT} (default: 600).",
        id="nurturing.W003",
    )]


@register(deploy=True)
def check_bulk_sender_settings(app_configs=None, **kwargs):
    problems = []
    if not settings.CRM_POSTAL_ADDRESS.strip():
        problems.append(Warning(
            "CRM_POSTAL_ADDRESS is empty: nurture emails go out without the sender's postal address in the footer.",
            hint="Set CRM_POSTAL_ADDRESS to your company's postal address (bulk-sender rules and anti-spam laws require it).",
            id="nurturing.W001",
        ))
    if not settings.CRM_SITE_URL.startswith("https://"):
        problems.append(Warning(
            f"CRM_SITE_URL is {settings.CRM_SITE_URL!r}: unsubscribe links in emails should use https.",
            hint="Set CRM_SITE_URL to the public https address of this app, e.g. https://crm.example.com.",
            id="nurturing.W002",
        ))
    return problems
