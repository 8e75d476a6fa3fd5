"""Browser tests: Playwright for Python driving the system's Chromium (Debian's package), never a downloaded one.

The browser runs headless against pytest-django's live server. Screenshots go
to test-artifacts/e2e/ (or $CRM_TEST_ARTIFACTS/e2e/). Without Chromium the
tests are skipped locally and fail on CI (`.ci/run` installs it).
"""

import os
import re
import shutil
from pathlib import Path

import pytest
from django.db import connections

from tests.conftest import ROOT, need_service

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

def chromium_path() -> str | None:
    candidate = os.environ.get("CRM_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    return candidate if candidate and os.path.exists(candidate) else None


@pytest.fixture
def browser():
    # Per test, not per session: Playwright's sync API keeps an event loop in
    # this thread while it runs, and Django refuses database calls from a thread
    # with a running loop (see new_page). Launching Chromium takes well under a second.
    path = chromium_path()
    if path is None:
        need_service("Chromium is not installed (Debian: apt-get install chromium; or set CRM_CHROMIUM)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        need_service("Playwright is not installed: make test installs requirements-dev.txt")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def artifacts() -> Path:
    folder = Path(os.environ.get("CRM_TEST_ARTIFACTS") or ROOT / "test-artifacts") / "e2e"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def new_page(browser, live_server, monkeypatch):
    """Opens a fresh browser context (own cookies) per call; all are closed at the end."""
    # Playwright's sync API runs an event loop in the test thread; Django refuses
    # database calls from such a thread unless told it is safe (it is: one thread
    # at a time). Only for this test: subprocesses of other tests must not see it.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    contexts = []

    def open_page(*, width=1280, height=900, **options):
        """`options` go to Playwright's new_context, e.g. timezone_id="America/New_York" for a visitor abroad."""
        context = browser.new_context(viewport={"width": width, "height": height}, base_url=live_server.url, **options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()
    # Connections opened while Playwright's loop ran belong to that context:
    # close them here, or the test database cannot be dropped at the end.
    connections.close_all()


def log_in(page, username, password="crm-demo"):
    """Through the login form, as a person does; reps and managers land on Today."""
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/today/$"))
