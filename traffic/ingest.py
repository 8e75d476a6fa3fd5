"""Page views in: checked and queued by the endpoint, written in batches by a worker.

`hit_accept` is all the request does: it checks the hit, drops what the
visitor asked not to be tracked (Do-Not-Track / Global Privacy Control, no
consent yet when consent is required), hashes the address with the day's
salt and appends the hit to the queue (traffic.queue). No database write.

`hits_ingest` (a Celery task every few seconds) drains the queue: it parses
the URLs (UTM parameters and click ids of the visit's landing page), tells
bots from people (traffic.classify: crawler lists, headless browsers, no-JS
hits with bot signs, bursts from one address), marks the visitors known as
customers or the team, and writes each batch with one INSERT.
"""

import hashlib
import hmac
import ipaddress
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from core.attribution import attribution_from_url
from core.http import host_allowed

from .classify import BurstCounter, classify
from .models import PageView, TrackingSalt, TrafficDaily, Visitor, VisitorKind
from .queue import hit_queue
from .signals import page_views_stored_send
from .visitors import visitors_record

MAX_BODY_BYTES = 4096
VISITOR_ID = re.compile(r"^[A-Za-z0-9_-]{16,40}$")


class HitRefused(Exception):
    """A hit the endpoint refuses: `status` is the HTTP answer, `field` the part at fault."""

    def __init__(self, message: str, *, field: str = "", status: int = 400):
        super().__init__(message)
        self.message, self.field, self.status = message, field, status


# --- The day's salt -------------------------------------------------------------------------

_salts: dict[date, "hmac.HMAC"] = {}


def _salted(day: date) -> "hmac.HMAC":
    """An HMAC keyed with the day's random salt (made by the first hit of the day, kept two days, then deleted),
    to copy for each address."""
    salted = _salts.get(day)
    if salted is None:
        row, _ = TrackingSalt.objects.get_or_create(day=day, defaults={"salt": secrets.token_hex(32)})
        salted = _salts[day] = hmac.new(bytes.fromhex(row.salt), digestmod=hashlib.sha256)
        for old in [d for d in _salts if d < day - timedelta(days=1)]:
            del _salts[old]
    return salted


def address_hash(address: str, at: datetime) -> str:
    if not address:
        return ""
    mac = _salted(timezone.localdate(at)).copy()
    mac.update(address.encode())
    return mac.hexdigest()[:16]


def salts_prune(*, now: datetime | None = None) -> int:
    """Delete salts older than yesterday: their hashes can no longer be matched to any address."""
    today = timezone.localdate(now or timezone.now())
    deleted, _ = TrackingSalt.objects.filter(day__lt=today - timedelta(days=1)).delete()
    return deleted


# --- The endpoint's part ---------------------------------------------------------------------


def _team_address(address: str) -> bool:
    """The address is in one of the team's networks (CRM_TRACKING_TEAM_NETWORKS): asked before it is hashed."""
    networks = settings.CRM_TRACKING_TEAM_NETWORKS
    if not networks or not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(network, strict=False) for network in networks)


def _site_allowed(host: str) -> bool:
    sites = settings.CRM_TRACKING_SITES
    return not sites or host_allowed(host, sites)


def _url(value, field: str, *, required: bool) -> str:
    if value in (None, ""):
        if required:
            raise HitRefused(f"{field}: the page's address is required.", field=field)
        return ""
    if not isinstance(value, str) or len(value) > 2000:
        raise HitRefused(f"{field}: give an http(s) address of at most 2000 characters.", field=field)
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HitRefused(f"{field}: give an http(s) address.", field=field)
    return value


def _text(value, field: str, limit: int) -> str:
    if value in (None, ""):
        return ""
    if not isinstance(value, str):
        raise HitRefused(f"{field}: give text.", field=field)
    return value[:limit]


def _flag(value, field: str) -> bool:
    if value in (None, 0, 1, True, False, "0", "1"):
        return value in (1, True, "1")
    raise HitRefused(f"{field}: give 0 or 1.", field=field)


@dataclass(frozen=True)
class Client:
    """What the request says about who sent the hit."""

    address: str
    user_agent: str
    accept_language: str
    do_not_track: bool


def hit_accept(payload: dict, *, client: Client, has_js: bool = True, now: datetime | None = None) -> dict | None:
    """Check a hit and queue it; returns what was queued, or None when the visitor is not to be tracked.

    Raises HitRefused (naming the field) for a hit that is malformed or from a site not
    allowed, and traffic.queue.QueueFull when the queue is full.
    """
    if not settings.CRM_TRACKING_ENABLED:
        return None
    if not isinstance(payload, dict):
        raise HitRefused("Send a JSON object.")
    unknown = set(payload) - {"v", "u", "t", "r", "l", "lp", "w", "sw", "c"}
    if unknown:
        raise HitRefused(f"Unknown fields: {', '.join(sorted(unknown))}.", field=sorted(unknown)[0])
    if client.do_not_track and settings.CRM_TRACKING_HONOR_DNT:
        return None
    if settings.CRM_TRACKING_CONSENT == "required" and not _flag(payload.get("c"), "c"):
        return None
    url = _url(payload.get("u"), "u", required=True)
    if not _site_allowed(urlsplit(url).hostname):
        raise HitRefused("This site is not one the CRM tracks (CRM_TRACKING_SITES).", field="u", status=403)
    landing = _flag(payload.get("l"), "l")
    landing_url = _url(payload.get("lp"), "lp", required=False) or (url if landing else "")
    visitor = payload.get("v")
    now = now or timezone.now()
    hashed = address_hash(client.address, now)
    if has_js:
        if not isinstance(visitor, str) or not VISITOR_ID.match(visitor):
            raise HitRefused("v: the visitor id is 16 to 40 letters, digits, - or _.", field="v")
    else:
        # The no-script pixel has no cookie: one visitor per address and browser per day.
        visitor = "nojs-" + hashlib.sha256(f"{hashed}|{client.user_agent}".encode()).hexdigest()[:27]
    width = payload.get("sw")
    if width is not None and (not isinstance(width, int) or isinstance(width, bool) or not 0 <= width <= 20000):
        raise HitRefused("sw: the screen width is a whole number of pixels.", field="sw")
    hit = {
        "id": uuid.uuid4().hex,
        "at": now.isoformat(),
        "v": visitor,
        "u": url,
        "t": _text(payload.get("t"), "t", 300),
        "r": _url(_text(payload.get("r"), "r", 2000), "r", required=False) if payload.get("r") else "",
        "lp": landing_url,
        "l": landing,
        "w": _flag(payload.get("w"), "w"),
        "sw": width,
        "js": has_js,
        "ua": client.user_agent[:500],
        "al": bool(client.accept_language),
        "ip": hashed,
        "tm": _team_address(client.address),
    }
    hit_queue().push(hit)
    return hit


# --- The worker's part ------------------------------------------------------------------------


def _page_view(hit: dict, bursts: BurstCounter, known: dict) -> PageView:
    at = datetime.fromisoformat(hit["at"])
    parts = urlsplit(hit["u"])
    referrer = hit.get("r") or ""
    verdict = classify(
        user_agent=hit.get("ua", ""), webdriver=hit.get("w", False), has_js=hit.get("js", True),
        accept_language="x" if hit.get("al") else "", screen_width=hit.get("sw"),
    )
    kind, reason = verdict.kind, verdict.reason
    if kind != VisitorKind.BOT and hit.get("ip"):
        count = bursts.hit(hit["ip"], at)
        if count > settings.CRM_TRACKING_BURST_PER_MINUTE:
            kind, reason = VisitorKind.BOT, f"burst: {count} hits in a minute from one address"
    visitor = known.get(hit["v"])
    if kind != VisitorKind.BOT:
        if hit.get("tm"):
            kind = VisitorKind.TEAM
        elif visitor is not None and visitor.kind in (VisitorKind.CUSTOMER, VisitorKind.TEAM):
            kind = visitor.kind
    return PageView(
        hit_id=uuid.UUID(hit["id"]), received_at=at, visitor_id=hit["v"], url=hit["u"][:2000],
        host=(parts.hostname or "")[:255], path=(parts.path or "/")[:500], title=hit.get("t", "")[:300],
        referrer=referrer[:2000], referrer_host=(urlsplit(referrer).hostname or "")[:255] if referrer else "",
        **attribution_from_url(hit.get("lp") or ""), is_landing=bool(hit.get("l")), has_js=bool(hit.get("js", True)),
        device=verdict.device, kind=kind, bot_reason=reason[:120], address_hash=hit.get("ip", "")[:16],
        lead_id=visitor.lead_id if visitor is not None else None,
    )


def hits_ingest(*, limit: int | None = None) -> int:
    """Write the queued hits as page views, in batches; returns how many hits were drained."""
    limit = limit or settings.CRM_TRACKING_INGEST_BATCH
    with hit_queue().drain(limit) as hits:
        if not hits:
            return 0
        bursts = BurstCounter(cache)
        for start in range(0, len(hits), 1000):
            chunk = hits[start:start + 1000]
            known = Visitor.objects.in_bulk({h["v"] for h in chunk})
            page_views_write([_page_view(h, bursts, known) for h in chunk], known=known)
        return len(hits)


def page_views_write(rows: list[PageView], *, known: dict | None = None) -> None:
    """Store page views in one transaction: the rows (a hit stored before is skipped), their new visitors, and
    their human visitors in the day's visitor sets (traffic.visitors). `known`: the Visitor rows already read."""
    if known is None:
        known = Visitor.objects.in_bulk({r.visitor_id for r in rows})
    with transaction.atomic():
        PageView.objects.bulk_create(rows, ignore_conflicts=True)
        Visitor.objects.bulk_create(
            [Visitor(visitor_id=v, first_seen_at=min(r.received_at for r in rows if r.visitor_id == v))
             for v in {r.visitor_id for r in rows} - set(known)],
            ignore_conflicts=True,
        )
        visitors_record(rows)
        page_views_stored_send({r.lead_id for r in rows if r.lead_id is not None and r.kind == VisitorKind.HUMAN})


# --- Reports' rollup ----------------------------------------------------------------------------


def traffic_rollup(day: date) -> int:
    """Rebuild the day's TrafficDaily rows (in the account's time zone) from its page views; returns the rows."""
    zone = timezone.get_current_timezone()
    start = datetime.combine(day, datetime.min.time(), tzinfo=zone)
    views = PageView.objects.filter(received_at__gte=start, received_at__lt=start + timedelta(days=1))
    groups = (
        views.values("utm_source", "utm_medium", "utm_campaign", "landing_path", "kind")
        .order_by()
        .annotate(n=Count("id"), visitors=Count("visitor_id", distinct=True), landings=Count("id", filter=Q(is_landing=True)))
    )
    rows = [
        TrafficDaily(day=day, utm_source=g["utm_source"], utm_medium=g["utm_medium"], utm_campaign=g["utm_campaign"],
                     landing_path=g["landing_path"], kind=g["kind"], views=g["n"], visitors=g["visitors"],
                     landings=g["landings"])
        for g in groups
    ]
    with transaction.atomic():
        TrafficDaily.objects.filter(day=day).delete()
        TrafficDaily.objects.bulk_create(rows, batch_size=1000)
    return len(rows)
