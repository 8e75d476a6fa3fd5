"""The optional CAPTCHA check of a form: Cloudflare Turnstile or Google reCAPTCHA, verified on the server.

Off unless CRM_CAPTCHA_PROVIDER is set. The hosted page then shows the
provider's widget (its script comes from the provider: the one thing this app
loads from elsewhere, and only when asked to), and each submission's token is
checked with the provider's siteverify endpoint. Both answer the same JSON:
{"success": true|false, "error-codes": [...]}. A failed or unreachable check
quarantines the submission (capture.services): never a lead, never lost.
"""

import json
import urllib.error
import urllib.parse
import urllib.request

from django.conf import settings

PROVIDERS = {
    "turnstile": {
        "verify_url": "https://challenges.cloudflare.com/turnstile/v0/siteverify",
        "script": "https://challenges.cloudflare.com/turnstile/v0/api.js",
        "widget_class": "cf-turnstile",
        "field": "cf-turnstile-response",
        "origins": ["https://challenges.cloudflare.com"],
    },
    "recaptcha": {
        "verify_url": "https://www.google.com/recaptcha/api/siteverify",
        "script": "https://www.google.com/recaptcha/api.js",
        "widget_class": "g-recaptcha",
        "field": "g-recaptcha-response",
        "origins": ["https://www.google.com", "https://www.gstatic.com"],
    },
}


def captcha() -> dict | None:
    """The configured provider's details, or None when the check is off."""
    provider = PROVIDERS.get(settings.CRM_CAPTCHA_PROVIDER)
    if provider is None:
        return None
    return {**provider, "site_key": settings.CRM_CAPTCHA_SITE_KEY,
            "verify_url": settings.CRM_CAPTCHA_VERIFY_URL or provider["verify_url"]}


def captcha_allow(response, provider: dict) -> None:
    """Let the provider's widget run on this one page: its script, frame and calls (the CSP stays strict elsewhere)."""
    origins = provider["origins"]
    response._csp_update = {"script-src": origins, "frame-src": origins, "connect-src": origins}


def captcha_verify(token: str, remote_ip: str = "") -> str:
    """"" when the provider says a person solved it; else why not (for the quarantine's reason)."""
    provider = captcha()
    if provider is None:
        return ""
    if not token:
        return "the CAPTCHA was not solved"
    data = {"secret": settings.CRM_CAPTCHA_SECRET, "response": token}
    if remote_ip:
        data["remoteip"] = remote_ip
    request = urllib.request.Request(
        provider["verify_url"], data=urllib.parse.urlencode(data).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    try:
        with urllib.request.urlopen(request, timeout=settings.CRM_CAPTCHA_TIMEOUT_SECONDS) as response:
            answer = json.loads(response.read(65536))
    except (urllib.error.URLError, TimeoutError, ValueError, OSError) as exc:
        return f"the CAPTCHA could not be checked ({exc.__class__.__name__})"
    if isinstance(answer, dict) and answer.get("success") is True:
        return ""
    codes = answer.get("error-codes", []) if isinstance(answer, dict) else []
    return f"the CAPTCHA check failed ({', '.join(map(str, codes)) or 'no reason given'})"[:200]
