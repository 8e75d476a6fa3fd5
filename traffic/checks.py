"""Checks of the tracking settings: `manage.py check` reports a setting that cannot work, `--deploy` a risky one."""

import ipaddress

from django.conf import settings
from django.core.checks import Error, Warning, register


@register()
def check_tracking_settings(app_configs=None, **kwargs):
    problems = []
    if settings.CRM_TRACKING_CONSENT not in ("none", "required"):
        problems.append(Error(
            f"CRM_TRACKING_CONSENT is {settings.CRM_TRACKING_CONSENT!r}.",
            hint='Set it to "none" (track from the first page view) or "required" (only after consent).',
            id="traffic.E001",
        ))
    for network in settings.CRM_TRACKING_TEAM_NETWORKS:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            problems.append(Error(
                f"CRM_TRACKING_TEAM_NETWORKS holds {network!r}, which is not a network.",
                hint="Give networks as CIDR, comma-separated: 203.0.113.0/24,2001:db8::/32.",
                id="traffic.E002",
            ))
    return problems


@register(deploy=True)
def check_tracking_sites(app_configs=None, **kwargs):
    if settings.CRM_TRACKING_ENABLED and not settings.CRM_TRACKING_SITES:
        return [Warning(
            "CRM_TRACKING_SITES is empty: the tracking endpoint accepts page views reported from any site.",
            hint="Set CRM_TRACKING_SITES to your website's host names, e.g. www.example.com,.example.com.",
            id="traffic.W001",
        )]
    return []
