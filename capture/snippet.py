"""The HTML a marketer pastes into the team's website to embed a form.

A plain HTML form: it posts to the CRM and works without JavaScript (the
thank-you page is the CRM's, or the form's thank-you address). With the
script it posts JSON instead, shows the thank-you in place, shows errors by
the fields, sends the tracking snippet's visitor id and landing page along,
and carries a fill-time token.
"""

from django.conf import settings
from django.template.loader import render_to_string


def embed_html(form, site_url: str | None = None) -> str:
    base = (site_url or settings.CRM_SITE_URL).rstrip("/")
    return render_to_string("capture/embed.html", {"form": form, "base": base, "data": {}, "errors": {}})
