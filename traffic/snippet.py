"""The HTML the team pastes into its website's pages (before </body>)."""

from django.conf import settings
from django.utils.html import format_html


def snippet_html(site_url: str | None = None) -> str:
    """The tracking script tag and the no-script pixel, pointing at this CRM (CRM_SITE_URL)."""
    base = (site_url or settings.CRM_SITE_URL).rstrip("/")
    consent = "required" if settings.CRM_TRACKING_CONSENT == "required" else "none"
    script = format_html(
        '<script defer src="{}/static/traffic/t.js" data-endpoint="{}/t/hit" data-consent="{}"></script>', base, base, consent
    )
    if settings.CRM_TRACKING_CONSENT == "required":
        return str(script)  # no consent can be asked without JavaScript: no pixel
    pixel = format_html(
        '<noscript><img src="{}/t/p.gif" alt="" width="1" height="1" referrerpolicy="no-referrer-when-downgrade"></noscript>',
        base,
    )
    return f"{script}\n{pixel}"
