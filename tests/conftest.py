"""Fixtures shared by the whole suite, and the suite's clock switch.

CRM_TEST_CLOCK runs every test as if the suite had started at another
moment: `CRM_TEST_CLOCK=2028-02-29T12:00` (UTC) or with a zone,
`CRM_TEST_CLOCK="2027-03-28T01:30 Europe/Berlin"`, which also moves the
process's local time zone (set CRM_TIME_ZONE to make it the account's zone
too). The clock keeps ticking from there, and a test that travels in time
itself travels from it. On CI, `make test` runs the suite at such moved
moments (scripts/test-suite), so no test may depend on the day it runs.
"""

import os
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

_moved_clock = None
_CLOCK_KEY = pytest.StashKey[datetime]()


def clock_destination(value: str) -> datetime:
    """The moment CRM_TEST_CLOCK names: an ISO date-time, then optionally an IANA zone (default UTC)."""
    stamp, _, zone = value.strip().partition(" ")
    moment = datetime.fromisoformat(stamp)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(zone.strip() or "UTC"))
    elif zone.strip():
        raise ValueError(f"CRM_TEST_CLOCK={value!r}: give either an offset or a zone, not both")
    return moment


def pytest_configure(config):
    global _moved_clock
    value = os.environ.get("CRM_TEST_CLOCK", "").strip()
    if not value:
        return
    import time_machine

    destination = clock_destination(value)
    _moved_clock = time_machine.travel(destination, tick=True)
    _moved_clock.start()
    config.stash[_CLOCK_KEY] = destination



def pytest_report_header(config):
    if _CLOCK_KEY in config.stash:
        return f"clock moved: the suite starts at {config.stash[_CLOCK_KEY].isoformat()} (CRM_TEST_CLOCK)"
    return None


def pytest_unconfigure(config):
    if _moved_clock is not None:
        _moved_clock.stop()


# Mutation testing runs the tests thousands of times, each time in a new
# process; migrating a database for each took most of its time. With
# CRM_TEST_DB_TEMPLATE (a migrated SQLite file, made by scripts/mutation.py),
# each process starts from its own copy of it instead.
_DB_TEMPLATE = os.environ.get("CRM_TEST_DB_TEMPLATE", "")

if _DB_TEMPLATE:

    @pytest.fixture(scope="session")
    def django_db_setup(django_db_blocker):
        import shutil
        import tempfile

        from django.db import connections

        folder = "/dev/shm" if os.path.isdir("/dev/shm") else None  # memory, where there is one
        handle, copy = tempfile.mkstemp(prefix="crm-test-", suffix=".sqlite3", dir=folder)
        os.close(handle)
        shutil.copyfile(_DB_TEMPLATE, copy)
        connection = connections["default"]
        connection.close()
        connection.settings_dict["NAME"] = copy
        yield
        connection.close()
        for leftover in (copy, copy + "-wal", copy + "-shm"):
            if os.path.exists(leftover):
                os.unlink(leftover)




@pytest.fixture
def rep_user(db):
    from tests.factories import rep

    return rep(username="rep1")


@pytest.fixture
def other_rep(db):
    from tests.factories import rep

    return rep(username="rep2")


@pytest.fixture
def manager_user(db):
    from tests.factories import manager

    return manager(username="manager")


@pytest.fixture
def marketer_user(db):
    from tests.factories import marketer

    return marketer(username="marketer")


# --- Service-backed tests -------------------------------------------------------

import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def services_required() -> bool:
    """On CI (or when asked), a test that needs a service fails instead of skipping."""
    return os.environ.get("CI") == "true" or os.environ.get("CRM_REQUIRE_SERVICES") == "1"


def need_service(reason: str):
    if services_required():
        pytest.fail(f"{reason} (CI needs it: start the service)", pytrace=False)
    pytest.skip(reason)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "integration" in item.keywords and "django_db" not in item.keywords:
            item.add_marker(pytest.mark.django_db(transaction=True))


@pytest.fixture
def postgres_db(django_db_serialized_rollback, transactional_db):
    # Serialized rollback: the rows migrations create (role groups, permissions)
    # are restored for each such test, whatever transactional test flushed them before.
    from django.db import connection

    if connection.vendor != "postgresql":
        need_service("needs PostgreSQL: set TEST_DATABASE_URL=postgres://…")
    return connection


@pytest.fixture
def redis_broker_url():
    from django.conf import settings

    url = settings.CELERY_BROKER_URL
    if not url.startswith("redis"):
        need_service("needs Redis: set CELERY_BROKER_URL=redis://…")
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        need_service(f"Redis at {url} does not answer: {exc}")
    return url


def celery_env(queue, env_extra):
    """The environment of a Celery process (worker or beat) on the test database, sending to and serving `queue`."""
    from django.db import connection

    db = connection.settings_dict
    db_url = f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "crm.settings.test",
        "TEST_DATABASE_URL": db_url,
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        **env_extra,
    }


def start_worker(queue, env_extra, log_path, concurrency=2):
    """A real `celery worker` process (its own session, so it can be killed whole) on `queue`."""
    env = celery_env(queue, env_extra)
    log = open(log_path, "a")
    proc = subprocess.Popen(
        [sys.executable, "-m", "crm.celeryd", "worker", "-l", "info", "-Q", queue,
         f"--concurrency={concurrency}", "-n", f"{queue}-{uuid.uuid4().hex[:4]}@%h", "--without-gossip", "--without-mingle"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    log.close()
    return proc


def wait_until_ready(proc, log_path, already=0, timeout=60):
    deadline = time.monotonic() + timeout
    while log_path.read_text(errors="replace").count("ready.") <= already:
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the Celery worker did not start:\n{log_path.read_text(errors='replace')}")
        time.sleep(0.2)


def stop_worker(proc, sig=None):
    import signal

    try:
        os.killpg(proc.pid, sig or signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=15)


class WorkerProcess:
    def __init__(self, proc, queue, log_path, env_extra, concurrency=2):
        self.proc, self.queue, self.log_path, self.env_extra = proc, queue, log_path, env_extra
        self.concurrency = concurrency

    def log(self):
        return self.log_path.read_text(errors="replace")

    def kill(self):
        """SIGKILL the worker and its pool processes, mid-whatever."""
        import signal

        stop_worker(self.proc, signal.SIGKILL)

    def restart(self):
        ready = self.log().count("ready.")
        self.proc = start_worker(self.queue, self.env_extra, self.log_path, self.concurrency)
        wait_until_ready(self.proc, self.log_path, already=ready)


@pytest.fixture
def worker_env():
    """Extra environment for the worker process (tests add EMAIL_URL and the like)."""
    return {}


@pytest.fixture
def celery_worker_process(postgres_db, redis_broker_url, tmp_path, worker_env):
    """A real `celery worker` process on its own queue, using the test database and Redis."""
    from celery import current_app

    queue = f"crm-test-{uuid.uuid4().hex[:8]}"
    env_extra = {"CELERY_BROKER_URL": redis_broker_url, **worker_env}
    log_path = tmp_path / "worker.log"
    log_path.write_text("")
    previous = current_app.conf.task_always_eager, current_app.conf.task_default_queue
    current_app.conf.task_always_eager = False
    current_app.conf.task_default_queue = queue
    worker = WorkerProcess(start_worker(queue, env_extra, log_path), queue, log_path, env_extra)
    try:
        wait_until_ready(worker.proc, log_path)
        yield worker
    finally:
        current_app.conf.task_always_eager, current_app.conf.task_default_queue = previous
        stop_worker(worker.proc)


@pytest.fixture
def receiver():
    """A webhook receiver on loopback (tests.outbound.receiver): the outbound and fault tests post to it."""
    from tests.outbound.receiver import Receiver

    server = Receiver()
    yield server
    server.close()


@pytest.fixture(autouse=True)
def per_process_caches_read_afresh():
    """Scoring keeps the rules it read, and {{ links.book_demo }} the booking pages it read, for a few seconds per
    process; a test's rolled-back rows must not reach the next test (nor its query counts depend on the order)."""
    from nurturing import rendering
    from scoring.services import rules_forget

    def forget():
        rules_forget()
        if rendering.book_demo_links is not None:
            rendering.book_demo_links.forget()

    forget()
    yield
    forget()
