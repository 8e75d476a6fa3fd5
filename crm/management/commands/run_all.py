"""Run the web server, a Celery worker and beat together in the foreground.

`make run` ends here. The three run as child processes in their own process
group; Ctrl-C (or SIGTERM) stops all three, and if one of them dies the
others are stopped too, so nothing is left running half-alive.
"""

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


def served_at(host: str, port: int) -> str:
    """The address a browser on this machine reaches the web server at: a wildcard host is reached on 127.0.0.1."""
    if host in ("", "0.0.0.0", "::", "[::]"):
        host = "127.0.0.1"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address
    return f"http://{host}:{port}"


def child_environment(*, host: str, port: int, environ=None) -> dict:
    """What web, worker and beat run with.

    Celery's entry point defaults to production settings: the children run the settings this command runs
    with (crm.settings.local under `make run`). Links in emails (unsubscribe) are built on CRM_SITE_URL: unless
    it is set (in the environment or in .env, which the settings have read into the environment by now), it
    is where this command serves, so `make run PORT=8102` sends links to port 8102, not the default 8000.
    """
    env = {**(os.environ if environ is None else environ), "DJANGO_SETTINGS_MODULE": settings.SETTINGS_MODULE}
    if not env.get("CRM_SITE_URL"):
        env["CRM_SITE_URL"] = served_at(host, port)
    return env


class Command(BaseCommand):
    help = "Start web + Celery worker + Celery beat in the foreground; Ctrl-C stops all."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 8000)))
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--concurrency", type=int, default=2, help="Celery worker processes")

    def handle(self, *args, host, port, concurrency, **options):
        python = sys.executable
        (settings.VAR_DIR / "mail").mkdir(parents=True, exist_ok=True)
        for folder in settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("data_folder_in"), settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("processed_folder"):
            if folder:
                os.makedirs(folder, exist_ok=True)
        commands = {
            "web": [python, "manage.py", "runserver", f"{host}:{port}", "--noreload"],
            # The default queue, the outbound webhooks' own (CRM_WEBHOOKS_QUEUE), the lead imports' (CRM_IMPORTS_QUEUE)
            # and rescoring's (CRM_SCORING_QUEUE).
            "worker": [python, "-m", "crm.celeryd", "worker", "-l", "info", f"--concurrency={concurrency}", "-n", "worker@%h",
                       "-Q", f"{settings.CELERY_TASK_DEFAULT_QUEUE},{settings.CRM_WEBHOOKS_QUEUE},{settings.CRM_IMPORTS_QUEUE},"
                       f"{settings.CRM_SCORING_QUEUE}"],
            "beat": [python, "-m", "crm.celeryd", "beat", "-l", "info", "-s", settings.CELERY_BEAT_SCHEDULE_FILENAME],
        }
        env = child_environment(host=host, port=port)
        self._banner(host, port, env["CRM_SITE_URL"])
        procs = {name: subprocess.Popen(cmd, env=env) for name, cmd in commands.items()}

        stopping = False

        def stop(signum=None, frame=None):
            nonlocal stopping
            if stopping:
                return
            stopping = True
            self.stdout.write("\nStopping web, worker and beat…")
            for proc in procs.values():
                if proc.poll() is None:
                    proc.terminate()
            deadline = time.monotonic() + 10
            for proc in procs.values():
                try:
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    proc.kill()

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping:
                for name, proc in procs.items():
                    if proc.poll() is not None:
                        self.stderr.write(f"{name} exited with code {proc.returncode}; stopping the others.")
                        stop()
                        break
                time.sleep(0.5)
        finally:
            stop()

    def _banner(self, host, port, site_url):
        url = f"http://{host}:{port}"
        lines = [
            "",
            f"  CRM running at {url}/  (admin: {url}/admin/)",
            f"  Links in emails (unsubscribe) point to {site_url}/",
            f"  Outbox (email written to files): {settings.EMAIL_FILE_PATH}"
            if settings.EMAIL_BACKEND.endswith("filebased.EmailBackend")
            else f"  Email backend: {settings.EMAIL_BACKEND}",
        ]
        demo = list(
            get_user_model().objects.filter(username__in=["manager", "marketer", "rep1", "rep2"]).values_list("username", flat=True)
        )
        if demo:
            password = os.environ.get("CRM_DEMO_PASSWORD", "crm-demo")
            lines.append(f"  Demo logins (password {password}): {', '.join(sorted(demo))}")
        lines += ["  Press Ctrl-C to stop web, worker and beat.", ""]
        self.stdout.write("\n".join(lines))
