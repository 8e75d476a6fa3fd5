"""What a request says about its sender."""

import errno

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


# --- The database cannot write -----------------------------------------------------------------------

# What the database drivers say when it cannot take a write, by what the person should be told. The services
# write in transactions, so whatever was being saved is saved whole or not at all.
_UNAVAILABLE = (
    ("read_only", ("readonly database", "read-only transaction", "read only transaction", "read-only file system")),
    ("disk_full", ("database or disk is full", "no space left on device", "disk full")),
    ("busy", ("database is locked",)),
    ("down", ("could not connect", "connection refused", "server closed the connection", "connection is closed",
              "terminating connection", "the database system is", "too many clients", "connection slots are reserved",
              "connection failed", "consuming input failed", "unable to open database file")),
)
UNAVAILABLE_MESSAGES = {
    "read_only": "The CRM's database is read-only at the moment, so nothing was saved. Try again in a few minutes.",
    "disk_full": "The CRM's disk is full, so nothing was saved. Try again later: the team has been told.",
    "busy": "The CRM is busy and could not save this. Try again in a moment.",
    "down": "The CRM's database is not answering, so nothing was saved. Try again in a few minutes.",
    "queue_down": "The CRM's queue is not answering, so this was not recorded. Try again in a few minutes.",
}


# The file system's own words for the same: the embedded default queues page views and form posts in files
# on the database's disk (traffic.queue's spool), so a full disk refuses them with the kernel's ENOSPC.
_FILE_SYSTEM = {errno.ENOSPC: "disk_full", errno.EDQUOT: "disk_full", errno.EROFS: "read_only"}


def database_unavailable(exc: BaseException | None) -> str | None:
    """Why the database (or the disk it shares with the queues, or the Redis holding the queues) could not take
    a write (a key of UNAVAILABLE_MESSAGES), or None for any other error."""
    from django.db import DatabaseError, InterfaceError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    if isinstance(exc, OSError) and exc.errno in _FILE_SYSTEM:
        return _FILE_SYSTEM[exc.errno]
    # The page views' and form posts' queue on Redis (traffic.queue) down, restarting or still loading its
    # append-only file: the client is told to come back, as for the database (a 500 would say it is our bug).
    if isinstance(exc, (RedisConnectionError, RedisTimeoutError)):
        return "queue_down"
    if not isinstance(exc, (DatabaseError, InterfaceError)):
        return None
    text = str(exc).lower()
    for kind, needles in _UNAVAILABLE:
        if any(needle in text for needle in needles):
            return kind
    return None
