import pytest

# The browser tests' fixtures (Chromium through Playwright), for test_tracking_browser.py.
from tests.e2e.conftest import artifacts, browser, new_page  # noqa: F401


@pytest.fixture(autouse=True)
def tracking(settings, tmp_path):
    """Each test its own spool queue, an empty burst counter, and the tracking settings' defaults."""
    from django.core.cache import cache

    from traffic import ingest

    settings.CRM_TRACKING_QUEUE_URL = f"spool:{tmp_path / 'spool'}"
    settings.CRM_TRACKING_SITES = ["www.example.com", ".example.org"]
    settings.CRM_TRACKING_CONSENT = "none"
    settings.CRM_TRACKING_HONOR_DNT = True
    settings.CRM_TRACKING_TEAM_NETWORKS = []
    settings.CRM_TRACKING_BURST_PER_MINUTE = 60
    cache.clear()
    ingest._salts.clear()  # the salts live in the (rolled back) database; the process keeps them too
    yield settings
    cache.clear()
    ingest._salts.clear()
