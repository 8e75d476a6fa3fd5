"""Rate limits for the public endpoints: at most `limit` attempts per key in each window.

    FORM_PER_EMAIL = RateLimit("form-email", limit=5, window_seconds=3600)

    decision = hit(FORM_PER_EMAIL, email)
    if not decision.allowed:
        return HttpResponse(status=429, headers={"Retry-After": str(decision.retry_after_seconds)})

**A plain fixed window.** Windows are aligned to the Unix epoch (a 60-second
window runs from one whole minute to the next, a day's from midnight UTC), and
each key's count starts again at zero in each window. So a key can make up to
twice `limit` attempts around a boundary, at the end of one window and the
start of the next. Weighing the previous window in (a "sliding" estimate)
would smooth that, but costs a second read per attempt and makes the count an
estimate; for forms and tracking, twice the limit for a moment is harmless,
and an exact count is easier to reason about and to test.

Every attempt is counted, refused ones too, so a client that keeps trying
stays refused until the window ends. The key (an email address, an IP
address) is never stored: only the first 32 hex characters of its SHA-256.

**Backends**, chosen by CRM_RATE_LIMIT_URL:

- `redis://` or `rediss://` (production; the default when Celery's broker is
  Redis): a script that runs `INCR crm:rl:<name>:<keyhash>:<window_start>`
  and `EXPIRE <key> <seconds left in the window + 1>` atomically, one command
  per attempt. The expiry is relative, so it holds whatever Redis's clock says.
- anything else, or empty: the database (`core.RateCounter`), one statement
  per attempt, `INSERT ... ON CONFLICT (bucket) DO UPDATE SET count = count + 1
  RETURNING count`, on PostgreSQL and on SQLite (3.35 or newer, which the
  check core.E001 asks for). Concurrent attempts never lose a count. Rows
  whose window has ended are deleted by `ratelimit_prune`, hourly from beat.

**When the backend fails** (Redis down, or slower than its half-second
timeouts; the database locked past its timeout), `hit` and `peek` allow the
attempt: they fail open. A rate limit guards against abuse at the margin;
failing closed would turn a broken counter into a broken endpoint, with every
form refused and every lead in the meantime lost, which costs more than a few
minutes without limits. The failure is logged as a warning at most once a
minute (with how many failures there were since the last warning), so it is
seen without flooding the logs. The database statement runs in a savepoint,
so a failure leaves a caller's transaction usable.

Call `hit` before opening a transaction: inside one, the count is undone if
the transaction rolls back, and on PostgreSQL the counter's row stays locked
until it ends, so concurrent requests for the same key wait for it.
"""

import hashlib
import logging
import math
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, connections, router, transaction
from django.utils import timezone

from .batches import delete_in_batches
from .models import RateCounter
from .redisconn import ThreadConnection

log = logging.getLogger(__name__)

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,40}")
REDIS_PREFIX = "crm:rl:"
REDIS_TIMEOUT_SECONDS = 0.5


@dataclass(frozen=True)
class RateLimit:
    """At most `limit` attempts per key in each window of `window_seconds`; `name` keeps limits apart."""

    name: str
    limit: int
    window_seconds: int

    def __post_init__(self):
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"Rate limit name {self.name!r}: use 1 to 40 letters, digits, '-', '_' or '.'.")
        if self.limit < 1 or self.window_seconds < 1:
            raise ValueError(f"Rate limit {self.name!r}: the limit and the window must be 1 or more.")


@dataclass(frozen=True)
class Decision:
    """Whether the attempt may go ahead, the key's attempts in this window, and when to try again if not.

    When the backend failed, the attempt is allowed with a count of 0 (see the module's docstring).
    """

    allowed: bool
    count: int
    retry_after_seconds: int


def key_hash(key: str) -> str:
    """The key as it is stored: the first 32 hex characters of its SHA-256."""
    return hashlib.sha256(key.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class _Window:
    bucket: str
    ends_at: datetime
    seconds_left: float


def _window(rate: RateLimit, key: str, now: datetime | None) -> _Window:
    now = now or timezone.now()
    if timezone.is_naive(now):
        raise ValueError("Rate limits need an aware datetime (timezone.now()), not a naive one.")
    moment = now.timestamp()
    start = int(moment // rate.window_seconds) * rate.window_seconds
    ends_at = datetime.fromtimestamp(start + rate.window_seconds, tz=UTC)
    return _Window(f"{rate.name}:{key_hash(key)}:{start}", ends_at, start + rate.window_seconds - moment)


def _decision(rate: RateLimit, count: int, window: _Window) -> Decision:
    if count <= rate.limit:
        return Decision(allowed=True, count=count, retry_after_seconds=0)
    return Decision(allowed=False, count=count, retry_after_seconds=max(1, math.ceil(window.seconds_left)))


# What a failed backend answers (see the module's docstring: fail-open).
FAILED_OPEN = Decision(allowed=True, count=0, retry_after_seconds=0)


def hit(rate: RateLimit, key: str, *, now: datetime | None = None) -> Decision:
    """Count one attempt for `key` in the current window; allowed while the key's count is at most the limit."""
    window = _window(rate, key, now)
    count = _ask_counter(lambda counter: counter.incr(window))
    return FAILED_OPEN if count is None else _decision(rate, count, window)


def peek(rate: RateLimit, key: str, *, now: datetime | None = None) -> Decision:
    """What `hit` would decide for one more attempt now, without counting it; `count` is the attempts so far."""
    window = _window(rate, key, now)
    count = _ask_counter(lambda counter: counter.get(window))
    if count is None:
        return FAILED_OPEN
    decision = _decision(rate, count + 1, window)
    return Decision(allowed=decision.allowed, count=count, retry_after_seconds=decision.retry_after_seconds)


def _ask_counter(question: "Callable[[DatabaseCounter | RedisCounter], int]") -> int | None:
    """The backend's answer, or None when it failed (with a warning, at most once a minute)."""
    counter = _counter()
    try:
        return question(counter)
    except counter.errors as exc:
        _warn_failure(exc)
        return None


def ratelimit_prune(now: datetime | None = None, *, batch_size: int = 5000) -> int:
    """Delete the database counters whose window has ended, `batch_size` rows per statement; how many went."""
    now = now or timezone.now()
    return delete_in_batches(RateCounter.objects.filter(expires_at__lte=now), batch_size=batch_size)


class DatabaseCounter:
    """Counts in core.RateCounter: one upsert per attempt (see the module's docstring)."""

    errors = (DatabaseError,)

    def __init__(self, url: str = ""):
        self.url = url

    def incr(self, window: _Window) -> int:
        alias = router.db_for_write(RateCounter)
        connection = connections[alias]
        q = connection.ops.quote_name
        meta = RateCounter._meta
        table, bucket, count, expires_at = (
            q(meta.db_table), *(q(meta.get_field(name).column) for name in ("bucket", "count", "expires_at"))
        )
        sql = (
            f"INSERT INTO {table} ({bucket}, {count}, {expires_at}) VALUES (%s, 1, %s) "
            f"ON CONFLICT ({bucket}) DO UPDATE SET {count} = {table}.{count} + 1 "
            f"RETURNING {count}"
        )
        # In a savepoint when the caller is in a transaction: a failure must not break theirs.
        with transaction.atomic(using=alias), connection.cursor() as cursor:
            cursor.execute(sql, [window.bucket, connection.ops.adapt_datetimefield_value(window.ends_at)])
            return cursor.fetchone()[0]

    def get(self, window: _Window) -> int:
        counts = RateCounter.objects.filter(bucket=window.bucket).values_list("count", flat=True)
        with transaction.atomic(using=counts.db):
            return counts.first() or 0


_INCR = "local n = redis.call('INCR', KEYS[1]) redis.call('EXPIRE', KEYS[1], ARGV[1]) return n"


class RedisCounter:
    """Counts in Redis under crm:rl:..., each key expiring when its window ends."""

    def __init__(self, url: str):
        import redis

        self.url = url
        self.errors = (redis.RedisError,)
        self.redis = redis.Redis.from_url(
            url, socket_connect_timeout=REDIS_TIMEOUT_SECONDS, socket_timeout=REDIS_TIMEOUT_SECONDS
        )
        # INCR and EXPIRE as one script: atomic like MULTI/EXEC, in one command (EVALSHA) and one answer.
        self._incr = self.redis.register_script(_INCR)
        self._fast = ThreadConnection(self.redis)

    def incr(self, window: _Window) -> int:
        # Relative, not EXPIREAT: Redis's clock need not agree with ours. A second more, so a
        # key never expires before the window it counts has ended.
        return int(self._fast.script(self._incr, keys=[REDIS_PREFIX + window.bucket],
                                     args=[math.ceil(window.seconds_left) + 1]))

    def get(self, window: _Window) -> int:
        return int(self.redis.get(REDIS_PREFIX + window.bucket) or 0)


def is_redis_url(url: str) -> bool:
    return url.startswith(("redis://", "rediss://"))


_backend: DatabaseCounter | RedisCounter | None = None


def _counter() -> DatabaseCounter | RedisCounter:
    """The backend CRM_RATE_LIMIT_URL names (one per process, made again when the setting changes)."""
    global _backend
    url = settings.CRM_RATE_LIMIT_URL
    backend = _backend
    if backend is None or backend.url != url:
        backend = _backend = RedisCounter(url) if is_redis_url(url) else DatabaseCounter(url)
    return backend


_warned_at: datetime | None = None
_failures_since_warning = 0
_warning_lock = threading.Lock()
WARNING_INTERVAL = timedelta(minutes=1)


def _warn_failure(exc: Exception) -> None:
    global _warned_at, _failures_since_warning
    now = timezone.now()
    with _warning_lock:
        _failures_since_warning += 1
        # A clock that went back (set by hand) warns at once rather than after the gap.
        if _warned_at is not None and _warned_at <= now < _warned_at + WARNING_INTERVAL:
            return
        failures, _failures_since_warning, _warned_at = _failures_since_warning, 0, now
    log.warning(
        "Rate limits are not enforced: the backend failed (%s: %s), so attempts are allowed meanwhile "
        "(%d failure(s) since the last such warning).",
        type(exc).__name__, exc, failures,
    )
