"""Was an open or a click a person, or a machine?

Machines open and click a lot of email: Apple Mail Privacy Protection
fetches every image when a message arrives; corporate security gateways
(Microsoft Safe Links, Mimecast, Proofpoint, Barracuda...) follow every link
within seconds of delivery, sometimes with HEAD requests; link previewers
fetch links pasted in chats. Counting those as interest would move leads and
send follow-ups to people who never read a word.

A provider that flags the open itself (nurturing.providers.MACHINE_OPENS)
is believed before these rules are asked. The rules, in order (the first that matches names the reason):
- a HEAD request (only what our own redirects see; providers rarely say);
- a user agent of a known scanner, proxy, previewer or script;
- an open fetched by Google's image proxy ("... via ggpht.com GoogleImageProxy"),
  which Gmail also uses to fetch images nobody looked at;
- an open whose user agent is the bare "Mozilla/5.0" of Apple's prefetch proxy;
- a click within CRM_SCANNER_CLICK_SECONDS of sending;
- a click on another link of the same email within 2 seconds of this one
  (scanners click them all; people do not).
"""

from datetime import datetime, timedelta

from django.conf import settings

SCANNER_AGENTS = (
    "barracuda", "mimecast", "proofpoint", "urldefense", "safelinks", "safe links", "ms-office", "microsoft office",
    "bingpreview", "python-requests", "python-urllib", "aiohttp", "curl/", "wget/", "go-http-client", "java/",
    "okhttp", "libwww", "httpclient", "headlesschrome", "phantomjs", "bot", "crawler", "spider", "scanner",
    "symantec", "trend micro", "trendmicro", "sophos", "fortinet", "fortiguard", "cisco", "ironport", "forcepoint",
    "zscaler", "paloalto", "checkpoint", "check point", "avanan", "vade", "linkpreview", "slackbot",
    "facebookexternalhit", "whatsapp", "skypeuripreview", "discordbot", "twitterbot", "linkedinbot", "googleother",
)
IMAGE_PROXY_AGENTS = ("googleimageproxy", "ggpht.com")
APPLE_PREFETCH_AGENT = "mozilla/5.0"
SAME_EMAIL_CLICK_BURST = timedelta(seconds=2)


def classify(
    *, kind: str, user_agent: str = "", method: str = "", occurred_at: datetime | None = None,
    sent_at: datetime | None = None, other_click_times: tuple = (),
) -> tuple[bool, str]:
    """(is_machine, reason) for an open or a click; other kinds are never machine."""
    if kind not in ("opened", "clicked"):
        return False, ""
    agent = (user_agent or "").strip().lower()
    if method.upper() == "HEAD":
        return True, "HEAD request (link scanner)"
    for token in SCANNER_AGENTS:
        if token in agent:
            return True, f"user agent of a scanner or previewer ({token})"
    if kind == "opened":
        if any(token in agent for token in IMAGE_PROXY_AGENTS):
            return True, "Google image proxy"
        if agent == APPLE_PREFETCH_AGENT:
            return True, "Apple Mail Privacy Protection prefetch"
        return False, ""
    if occurred_at is not None and sent_at is not None:
        after = (occurred_at - sent_at).total_seconds()
        if 0 <= after <= settings.CRM_SCANNER_CLICK_SECONDS:
            return True, f"clicked {after:.0f} s after sending (link scanner)"
    if occurred_at is not None:
        for other in other_click_times:
            if abs(other - occurred_at) <= SAME_EMAIL_CLICK_BURST:
                return True, "several links of the email clicked within 2 s (link scanner)"
    return False, ""
