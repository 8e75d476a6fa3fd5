"""Deployment checks for sending bulk email: `manage.py check --deploy` reports what is missing."""

from django.conf import settings
from django.core.checks import Warning, register


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
