"""Rate limits: counted per key in fixed windows, in the database or in Redis, and allowed when the counter fails.

The tests taking `backend` run once on the database and once on a real Redis
(marked integration: the PostgreSQL + Redis phase runs them, the SQLite phase
leaves them out).
"""

import hashlib
import logging
import threading
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
import time_machine
from django.db import connections, transaction

from core import checks, ratelimit
from core.models import EventCursor, RateCounter
from core.ratelimit import Decision, RateLimit, hit, peek, ratelimit_prune
from core.tasks import prune_rate_counters

pytestmark = pytest.mark.django_db

# 25 seconds into a minute, and into an hour's window too: a 60 s window has 35 s left.
T0 = datetime(2031, 5, 6, 10, 0, 25, tzinfo=UTC)
MINUTE_START = int(datetime(2031, 5, 6, 10, 0, tzinfo=UTC).timestamp())
ANN = "ann@example.com"


def hashed(key):
    return hashlib.sha256(key.encode()).hexdigest()[:32]


@pytest.fixture
def name():
    """A name of its own for each test, so tests sharing a Redis never count together."""
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture(autouse=True)
def no_warning_yet(monkeypatch):
    monkeypatch.setattr(ratelimit, "_warned_at", None)
    monkeypatch.setattr(ratelimit, "_failures_since_warning", 0)


@pytest.fixture(params=["database", pytest.param("redis", marks=pytest.mark.integration)])
def backend(request, settings, name):
    if request.param == "database":
        settings.CRM_RATE_LIMIT_URL = ""
        yield SimpleNamespace(kind="database", stored=lambda: dict(RateCounter.objects.values_list("bucket", "count")))
        return
    import redis

    url = request.getfixturevalue("redis_broker_url")
    settings.CRM_RATE_LIMIT_URL = url
    client = redis.Redis.from_url(url, decode_responses=True)
    pattern = f"crm:rl:{name}*"

    def stored():
        return {key.removeprefix("crm:rl:"): int(client.get(key)) for key in client.scan_iter(pattern)}

    yield SimpleNamespace(kind="redis", stored=stored, client=client)
    for key in client.scan_iter(pattern):
        client.delete(key)


def test_attempts_up_to_the_limit_are_allowed_and_counted(backend, name, clock):
    rate = RateLimit(name, limit=3, window_seconds=60)

    decisions = [hit(rate, ANN) for _ in range(3)]

    assert decisions == [Decision(True, 1, 0), Decision(True, 2, 0), Decision(True, 3, 0)]


def test_past_the_limit_an_attempt_is_refused_until_its_window_ends(backend, name, clock):
    rate = RateLimit(name, limit=2, window_seconds=60)
    hit(rate, ANN)
    hit(rate, ANN)

    assert hit(rate, ANN) == Decision(allowed=False, count=3, retry_after_seconds=35)
    clock.shift(30.5)
    assert hit(rate, ANN) == Decision(allowed=False, count=4, retry_after_seconds=5)  # 4.5 s, rounded up
    clock.shift(4)
    assert hit(rate, ANN) == Decision(allowed=False, count=5, retry_after_seconds=1)  # half a second


def test_a_new_window_counts_from_zero(backend, name, clock):
    rate = RateLimit(name, limit=1, window_seconds=60)
    hit(rate, ANN)
    clock.shift(34)
    assert hit(rate, ANN) == Decision(allowed=False, count=2, retry_after_seconds=1)

    clock.shift(1)  # 10:01:00, the next minute

    assert hit(rate, ANN) == Decision(allowed=True, count=1, retry_after_seconds=0)


def test_each_key_is_counted_apart(backend, name, clock):
    rate = RateLimit(name, limit=1, window_seconds=60)
    hit(rate, ANN)

    assert hit(rate, "bob@example.com") == Decision(True, 1, 0)
    assert hit(rate, ANN) == Decision(False, 2, 35)


def test_limits_with_other_names_are_counted_apart(backend, name, clock):
    per_email = RateLimit(name, limit=1, window_seconds=60)
    per_form = RateLimit(f"{name}-form", limit=1, window_seconds=60)
    hit(per_email, ANN)

    assert hit(per_form, ANN) == Decision(True, 1, 0)
    assert hit(per_email, ANN) == Decision(False, 2, 35)


def test_peek_tells_what_the_next_attempt_would_get_without_counting_it(backend, name, clock):
    rate = RateLimit(name, limit=2, window_seconds=60)
    assert peek(rate, ANN) == Decision(allowed=True, count=0, retry_after_seconds=0)
    hit(rate, ANN)
    assert peek(rate, ANN) == Decision(allowed=True, count=1, retry_after_seconds=0)
    hit(rate, ANN)

    assert peek(rate, ANN) == Decision(allowed=False, count=2, retry_after_seconds=35)
    assert peek(rate, ANN) == Decision(allowed=False, count=2, retry_after_seconds=35)
    assert hit(rate, ANN).count == 3


def test_keys_are_stored_only_as_their_hash(backend, name, clock):
    rate = RateLimit(name, limit=5, window_seconds=60)
    hit(rate, ANN)
    hit(rate, ANN)
    hit(rate, "203.0.113.7")

    assert backend.stored() == {
        f"{name}:{hashed(ANN)}:{MINUTE_START}": 2,
        f"{name}:{hashed('203.0.113.7')}:{MINUTE_START}": 1,
    }
    if backend.kind == "database":
        everything = repr(list(RateCounter.objects.values()))
    else:
        everything = repr({key: backend.client.get(key) for key in backend.client.scan_iter(f"crm:rl:{name}*")})
    assert "ann@example.com" not in everything and "203.0.113.7" not in everything
    assert "example.com" not in everything


@pytest.fixture
def thread_database(tmp_path):
    """What a thread does first to count where the app would: on SQLite, a database file like the app's.

    The SQLite test database is in memory, shared between threads in SQLite's
    shared-cache mode, where a writer that meets another's lock fails at once
    ("database table is locked") instead of waiting its turn. The app's database
    is a file (WAL, IMMEDIATE transactions, a busy timeout), so on SQLite each
    thread's "default" connection is one to such a file, with the same options.
    """
    default = connections["default"]
    if default.vendor != "sqlite":
        return lambda: None
    file_settings = {**default.settings_dict, "NAME": str(tmp_path / "counters.sqlite3")}
    creator = type(default)(file_settings, "default")
    with creator.schema_editor(atomic=False) as editor:
        editor.create_model(RateCounter)
    creator.close()

    def use_file():
        connections["default"] = type(default)(file_settings, "default")

    return use_file


def in_threads(count, work, thread_database):
    results, start = [], threading.Barrier(count)

    def run():
        try:
            thread_database()
            start.wait()
            results.extend(work())
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_attempts_from_many_threads_at_once_are_each_counted_once(backend, name, thread_database):
    rate = RateLimit(name, limit=1000, window_seconds=3600)

    counts = in_threads(8, lambda: [hit(rate, ANN, now=T0).count for _ in range(50)], thread_database)

    # Each attempt saw its own count: none lost, none read twice, none failed open (count 0).
    assert sorted(counts) == list(range(1, 401))
    assert in_threads(1, lambda: [peek(rate, ANN, now=T0)], thread_database) == [Decision(True, 400, 0)]


def test_a_database_counter_expires_when_its_window_ends(settings, name, clock):
    settings.CRM_RATE_LIMIT_URL = ""
    hit(RateLimit(name, limit=1, window_seconds=60), ANN)
    hit(RateLimit(f"{name}-hour", limit=1, window_seconds=3600), ANN)

    assert dict(RateCounter.objects.values_list("bucket", "expires_at")) == {
        f"{name}:{hashed(ANN)}:{MINUTE_START}": datetime(2031, 5, 6, 10, 1, tzinfo=UTC),
        f"{name}-hour:{hashed(ANN)}:{MINUTE_START}": datetime(2031, 5, 6, 11, 0, tzinfo=UTC),
    }


@pytest.mark.integration
def test_a_redis_counter_expires_when_its_window_ends(settings, redis_broker_url, name, clock):
    import redis

    settings.CRM_RATE_LIMIT_URL = redis_broker_url
    client = redis.Redis.from_url(redis_broker_url)
    key = f"crm:rl:{name}:{hashed(ANN)}:{MINUTE_START}"
    try:
        hit(RateLimit(name, limit=1, window_seconds=60), ANN)
        # 35 s left in the window, and one more; Redis rounds what remains to the nearest second.
        assert client.ttl(key) in (35, 36)
    finally:
        client.delete(key)


def test_prune_deletes_only_counters_whose_window_has_ended():
    now = T0
    ends = {"gone-a": now - timedelta(hours=2), "gone-b": now - timedelta(seconds=1), "gone-c": now,
            "gone-d": now - timedelta(minutes=1), "gone-e": now - timedelta(days=3),
            "kept-a": now + timedelta(seconds=1), "kept-b": now + timedelta(hours=1)}
    RateCounter.objects.bulk_create(RateCounter(bucket=b, count=1, expires_at=at) for b, at in ends.items())

    assert ratelimit_prune(now, batch_size=2) == 5

    assert sorted(RateCounter.objects.values_list("bucket", flat=True)) == ["kept-a", "kept-b"]
    assert ratelimit_prune(now) == 0


def test_beat_prunes_the_counters_every_hour(settings, name, clock):
    settings.CRM_RATE_LIMIT_URL = ""
    rate = RateLimit(name, limit=1, window_seconds=60)
    hit(rate, ANN)
    clock.shift(35)
    hit(rate, ANN)

    entry = settings.CELERY_BEAT_SCHEDULE["ratelimit-prune"]
    assert (entry["task"], entry["schedule"]) == (prune_rate_counters.name, 3600.0)
    prune_rate_counters.delay()

    assert list(RateCounter.objects.values_list("bucket", "count")) == [(f"{name}:{hashed(ANN)}:{MINUTE_START + 60}", 1)]


def rate_limit_warnings(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "core.ratelimit" and r.levelno == logging.WARNING]


def test_with_redis_down_attempts_are_allowed_and_a_warning_is_logged_once_a_minute(settings, name, clock, caplog):
    settings.CRM_RATE_LIMIT_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    rate = RateLimit(name, limit=1, window_seconds=60)
    caplog.set_level(logging.WARNING, logger="core.ratelimit")

    decisions = [hit(rate, ANN), hit(rate, ANN), peek(rate, ANN)]
    clock.shift(59)
    decisions.append(hit(rate, ANN))

    assert decisions == [Decision(allowed=True, count=0, retry_after_seconds=0)] * 4
    [warning] = rate_limit_warnings(caplog)
    assert "Rate limits are not enforced" in warning and "ConnectionError" in warning
    assert "(1 failure(s) since the last such warning)" in warning

    clock.shift(1)
    assert hit(rate, ANN) == Decision(allowed=True, count=0, retry_after_seconds=0)
    assert len(rate_limit_warnings(caplog)) == 2
    assert "(4 failure(s) since the last such warning)" in rate_limit_warnings(caplog)[1]


def test_with_the_database_failing_attempts_are_allowed_and_the_callers_transaction_goes_on(
    settings, name, clock, caplog, monkeypatch
):
    settings.CRM_RATE_LIMIT_URL = ""
    # A table that is not there: the database itself refuses the statements.
    monkeypatch.setattr(RateCounter._meta, "db_table", "core_ratecounter_missing")
    rate = RateLimit(name, limit=1, window_seconds=60)
    caplog.set_level(logging.WARNING, logger="core.ratelimit")

    with transaction.atomic():
        EventCursor.objects.create(name="before")
        assert hit(rate, ANN) == Decision(allowed=True, count=0, retry_after_seconds=0)
        assert peek(rate, ANN) == Decision(allowed=True, count=0, retry_after_seconds=0)
        EventCursor.objects.create(name="after")  # PostgreSQL refuses this in a failed transaction

    assert sorted(EventCursor.objects.values_list("name", flat=True)) == ["after", "before"]
    [warning] = rate_limit_warnings(caplog)
    assert "core_ratecounter_missing" in warning


def test_a_rate_limit_needs_a_plain_name_a_limit_and_a_window():
    for name in ("", "has:colon", "has space", "x" * 41):
        with pytest.raises(ValueError, match="letters, digits"):
            RateLimit(name, limit=1, window_seconds=60)
    for limit, window in ((0, 60), (1, 0)):
        with pytest.raises(ValueError, match="must be 1 or more"):
            RateLimit("form", limit=limit, window_seconds=window)
    assert RateLimit("x" * 40, limit=1, window_seconds=1).name == "x" * 40


def test_a_naive_time_is_refused_rather_than_read_in_some_zone(settings, name):
    settings.CRM_RATE_LIMIT_URL = ""
    with pytest.raises(ValueError, match="aware datetime"):
        hit(RateLimit(name, limit=1, window_seconds=60), ANN, now=datetime(2031, 5, 6, 10, 0))
    assert not RateCounter.objects.exists()


def fake_connections(version):
    sqlite = SimpleNamespace(sqlite_version_info=version, sqlite_version=".".join(map(str, version)))
    return {"default": SimpleNamespace(vendor="sqlite", Database=sqlite)}


def test_the_check_refuses_an_sqlite_too_old_to_count_in_one_statement(settings, monkeypatch):
    settings.CRM_RATE_LIMIT_URL = ""
    monkeypatch.setattr(checks, "connections", fake_connections((3, 34, 1)))
    [error] = checks.check_rate_limit_backend()
    assert (error.id, error.msg) == ("core.E001", "Rate limits counted in the database need SQLite 3.35 or newer; this Python has 3.34.1.")

    monkeypatch.setattr(checks, "connections", fake_connections((3, 35, 0)))
    assert checks.check_rate_limit_backend() == []

    settings.CRM_RATE_LIMIT_URL = "redis://127.0.0.1:6379/3"
    monkeypatch.setattr(checks, "connections", fake_connections((3, 34, 1)))
    assert checks.check_rate_limit_backend() == []


def test_the_check_warns_of_a_url_that_is_not_redis(settings):
    settings.CRM_RATE_LIMIT_URL = "redsi://127.0.0.1:6379/3"
    [warning] = checks.check_rate_limit_backend()
    assert warning.id == "core.W001" and "'redsi://127.0.0.1:6379/3'" in warning.msg

    settings.CRM_RATE_LIMIT_URL = ""
    assert checks.check_rate_limit_backend() == []  # this Python's SQLite, or PostgreSQL, will do
