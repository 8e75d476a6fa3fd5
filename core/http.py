"""What a request says about its sender."""

from django.conf import settings


def host_allowed(host: str | None, sites) -> bool:
    """`host` is one of `sites` (lower-case host names); a site written with a leading dot takes its subdomains."""
    host = (host or "").lower()
    return bool(host) and any(host == site or (site.startswith(".") and host.endswith(site)) for site in sites)


def client_address(request) -> str:
    """The client's IP address.

    Behind CRM_TRUSTED_PROXIES reverse proxies, the address the nearest of them
    saw: each proxy appends its peer to X-Forwarded-For, so it is the
    CRM_TRUSTED_PROXIES-th entry from the right. Entries further left are what
    the client wrote itself and are never used. Without proxies (0) the header
    is ignored.
    """
    proxies = settings.CRM_TRUSTED_PROXIES
    if proxies:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR", "")
