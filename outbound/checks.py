"""Checks of the webhook settings: `manage.py check` reports what cannot work, `check --deploy` what is unsafe."""

from django.conf import settings
from django.core.checks import Error, Warning, register


@register()
def check_lease_outlasts_a_try(app_configs=None, **kwargs):
    problems = []
    timeout, lease = settings.CRM_WEBHOOKS_TIMEOUT_SECONDS, settings.CRM_WEBHOOKS_LEASE_SECONDS
    # A sender starts a try only when two timeouts (connect, then answer) still fit in its lease.
    if lease <= 2 * timeout:
        problems.append(Error(
            f"CRM_WEBHOOKS_LEASE_SECONDS ({lease}) is not more than twice CRM_WEBHOOKS_TIMEOUT_SECONDS ({timeout}): "
            "no webhook would ever be sent.",
            hint="Keep the lease well above two timeouts (defaults: 300 and 10).", id="outbound.E001",
        ))
    schedule = settings.CRM_WEBHOOKS_RETRY_SCHEDULE
    if not schedule or any(wait <= 0 for wait in schedule):
        problems.append(Error(
            f"CRM_WEBHOOKS_RETRY_SCHEDULE is {schedule!r}: give one or more waits, in seconds, each above 0.",
            hint="The default is 5,300,1800,7200,18000,36000,36000 (about a day).", id="outbound.E002",
        ))
    return problems


@register(deploy=True)
def check_private_targets_are_refused(app_configs=None, **kwargs):
    if not settings.CRM_WEBHOOKS_ALLOW_PRIVATE_TARGETS:
        return []
    return [Warning(
        "CRM_WEBHOOKS_ALLOW_PRIVATE_TARGETS is on: a manager can point a webhook at this server's own network "
        "(databases, cloud metadata).",
        hint="Turn it off unless a receiver really lives on your private network.", id="outbound.W001",
    )]
