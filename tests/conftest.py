import pytest


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

import os  # noqa: E402
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
def postgres_db(transactional_db):
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


class WorkerProcess:
    def __init__(self, proc, queue, log_path):
        self.proc, self.queue, self.log_path = proc, queue, log_path

    def log(self):
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def celery_worker_process(postgres_db, redis_broker_url, tmp_path):
    """A real `celery worker` process on its own queue, using the test database."""
    from celery import current_app
    from django.db import connection

    queue = f"crm-test-{uuid.uuid4().hex[:8]}"
    db = connection.settings_dict
    db_url = f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "crm.settings.test",
        "TEST_DATABASE_URL": db_url,
        "CELERY_BROKER_URL": redis_broker_url,
    }
    log_path = tmp_path / "worker.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "crm", "worker", "-l", "info", "-Q", queue,
             "--concurrency=2", "-n", f"{queue}@%h", "--without-gossip", "--without-mingle"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    previous = current_app.conf.task_always_eager
    current_app.conf.task_always_eager = False
    worker = WorkerProcess(proc, queue, log_path)
    try:
        deadline = time.monotonic() + 60
        while "ready." not in worker.log():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the Celery worker did not start:\n{worker.log()}")
            time.sleep(0.2)
        yield worker
    finally:
        current_app.conf.task_always_eager = previous
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
