"""`make run`'s last step: web, worker and beat on the embedded default, together."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_run_all_serves_the_admin_and_a_worker_answers_beats_tick(tmp_path):
    port = free_port()
    # A newcomer's shell: no settings module, no key. manage.py picks the local
    # settings and run_all hands them to the worker and beat (whose own default
    # is production, which would refuse to start without a key).
    env = {
        k: v for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "TEST_DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE", "SECRET_KEY")
    }
    env.update(CRM_VAR_DIR=str(tmp_path), CRM_BEAT_TICK_SECONDS="1")
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=300)
    log = open(tmp_path / "run.log", "w")
    proc = subprocess.Popen(
        [*manage, "run_all", "--port", str(port)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        health = None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/login/", timeout=2) as r:
                    assert r.status == 200
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    health = r.read().decode()
                if '"workers": "ok"' in health:
                    break
            except OSError:
                pass
            assert proc.poll() is None, (tmp_path / "run.log").read_text()
            time.sleep(0.5)
        assert health and '"workers": "ok"' in health, (tmp_path / "run.log").read_text()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
        log.close()
    # One Ctrl-C stopped all three: nothing of the group is left.
    time.sleep(1)
    with pytest.raises(ProcessLookupError):
        os.killpg(proc.pid, 0)
