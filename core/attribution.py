"""Where a visit came from, read from its landing page's address: UTM parameters and the ad click id.

Shared by the website's page views (traffic) and the captures (capture), so a
visit reads the same wherever it is looked at.
"""

from urllib.parse import parse_qsl, urlsplit

from django.db import models

UTM_PARAMS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")
# The ad platforms' click ids, in the order they are looked for: Google, Meta, Microsoft, TikTok, LinkedIn, X.
CLICK_IDS = ("gclid", "gbraid", "wbraid", "fbclid", "msclkid", "ttclid", "li_fat_id", "twclid")


class UtmFields(models.Model):
    """The five UTM parameters of a visit, each at most 200 characters."""

    utm_source = models.CharField(max_length=200, blank=True)
    utm_medium = models.CharField(max_length=200, blank=True)
    utm_campaign = models.CharField(max_length=200, blank=True)
    utm_content = models.CharField(max_length=200, blank=True)
    utm_term = models.CharField(max_length=200, blank=True)

    class Meta:
        abstract = True


def attribution_from_url(url: str) -> dict:
    """The UTM parameters, the first click id (type and value) and the path of a landing page's address.

    Empty values for an empty address; values are cut to their fields' lengths.
    """
    parts = urlsplit(url) if url else None
    params = dict(parse_qsl(parts.query, keep_blank_values=False)) if parts else {}
    found = {name: params.get(name, "")[:200] for name in UTM_PARAMS}
    click = next(((name, params[name]) for name in CLICK_IDS if params.get(name)), ("", ""))
    found["click_id_type"], found["click_id"] = click[0], click[1][:200]
    found["landing_path"] = (parts.path or "/")[:500] if parts else ""
    return found
