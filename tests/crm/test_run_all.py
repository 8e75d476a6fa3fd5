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


# --- Where links in emails point -------------------------------------------------------------------


@pytest.mark.parametrize(("host", "site"), [
    ("127.0.0.1", "http://127.0.0.1:8102"), ("0.0.0.0", "http://127.0.0.1:8102"), ("localhost", "http://localhost:8102"),
    ("::1", "http://[::1]:8102"),
])
def test_unsubscribe_links_follow_the_port_run_all_serves_on(host, site):
    from crm.management.commands.run_all import child_environment

    env = child_environment(host=host, port=8102, environ={"PATH": "/bin"})

    assert env["CRM_SITE_URL"] == site
    assert env["DJANGO_SETTINGS_MODULE"] == "crm.settings.test" and env["PATH"] == "/bin"


@pytest.mark.parametrize("given", ["https://crm.example.com", "http://127.0.0.1:9000"])
def test_a_site_url_the_user_set_is_kept(given):
    from crm.management.commands.run_all import child_environment

    assert child_environment(host="127.0.0.1", port=8102, environ={"CRM_SITE_URL": given})["CRM_SITE_URL"] == given


def test_make_run_passes_its_port_to_run_all_and_the_children_build_links_on_it():
    """`make run PORT=8102` ends in `run_all --port 8102`, whose children build unsubscribe links on that port."""
    assert "run_all --port $(PORT)" in (ROOT / "Makefile").read_text()
    from crm.management.commands.run_all import child_environment

    shell = {k: v for k, v in os.environ.items() if k != "CRM_SITE_URL"}
    child = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from nurturing.compose import unsubscribe_url; "
                               "print(unsubscribe_url('t0k3n'))"],
        cwd=ROOT, env=child_environment(host="127.0.0.1", port=8102, environ=shell), capture_output=True, text=True,
        timeout=120, check=True,
    )
    assert child.stdout.strip() == "http://127.0.0.1:8102/unsubscribe/t0k3n/", child.stdout
