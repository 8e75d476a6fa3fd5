"""`python -m crm.celeryd worker|beat`: Celery's own worker and beat commands, without the rest of its command line.

The integration tests' workers and the fault tests' beats start this way (tests/conftest.py), and so does
`make run` (tests/crm/test_run_all.py): those show the processes work. These tests show what the launcher
leaves out.
"""

import os
import subprocess
import sys
from pathlib import Path

from celery.bin.beat import beat
from celery.bin.worker import worker

from crm.celeryd import main

ROOT = Path(__file__).resolve().parent.parent.parent
SHELL_LIBRARIES = ("click_repl", "prompt_toolkit")


def run_python(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT, env={**os.environ, "DJANGO_SETTINGS_MODULE": "crm.settings.test"},
        capture_output=True, text=True, timeout=120,
    )


def modules_after(code: str) -> set[str]:
    result = run_python("-c", f"{code}\nimport sys\nprint(' '.join(sys.modules))")
    assert result.returncode == 0, result.stderr[-3000:]
    return set(result.stdout.split())


def run_launcher(*args: str) -> subprocess.CompletedProcess:
    return run_python("-m", "crm.celeryd", *args)


def test_the_launcher_loads_no_interactive_shell_where_celerys_command_line_does():
    celery_cli = modules_after("import celery.bin.celery")
    launcher = modules_after("import crm.celeryd")

    assert set(SHELL_LIBRARIES) <= celery_cli  # what the launcher is for: `celery` itself loads them
    assert launcher.isdisjoint(SHELL_LIBRARIES), sorted(launcher & set(SHELL_LIBRARIES))
    assert "celery.bin.celery" not in launcher
    assert "crm.celery" in launcher


def test_it_offers_celerys_worker_and_beat_with_their_options_but_detaching():
    assert sorted(main.commands) == ["beat", "worker"]
    for ours, celerys in ((main.commands["worker"], worker), (main.commands["beat"], beat)):
        assert ours.callback is celerys.callback
        assert [param.name for param in ours.params] == [param.name for param in celerys.params if param.name != "detach"]
    assert "detach" in [param.name for param in worker.params]  # Celery's own command keeps it


def test_help_names_the_commands_and_detach_is_refused():
    listing = run_launcher("--help")
    refused = run_launcher("worker", "--detach")

    assert listing.returncode == 0, listing.stderr
    assert "worker" in listing.stdout and "beat" in listing.stdout
    assert refused.returncode == 2
    assert "No such option '--detach'" in refused.stderr
