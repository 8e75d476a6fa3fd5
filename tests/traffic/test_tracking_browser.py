"""The snippet in a real browser (Chromium): a website on its own origin, with the snippet pasted in,
records its page views in the CRM; a browser sending Global Privacy Control records none."""

import pytest

from tests import waiting
from tests.local_http import LocalServer
from traffic import ingest
from traffic.models import PageView, VisitorKind
from traffic.queue import hit_queue
from traffic.snippet import snippet_html

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

A_PERSONS_CHROME = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                    "Chrome/131.0.0.0 Safari/537.36")


class Website:
    """The team's website on another origin than the CRM: two pages with the snippet, one link between them."""

    PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title></head>
<body><h1>{title}</h1><a href="/pricing">Pricing</a>{snippet}</body></html>"""

    def __init__(self, snippet: str):
        def answer(method, path, body):
            title = "Pricing" if path.startswith("/pricing") else "The pipeline guide"
            return 200, "text/html; charset=utf-8", self.PAGE.format(title=title, snippet=snippet).encode()

        self.local = LocalServer(answer)
        self.url = self.local.url

    def close(self):
        self.local.close()


@pytest.fixture
def website(live_server, tracking):
    tracking.CRM_TRACKING_SITES = ["127.0.0.1"]
    site = Website(snippet_html(live_server.url))
    yield site
    site.close()


def a_person(page):
    """What a person's browser shows: no navigator.webdriver (Playwright sets it), a usual user agent."""
    page.add_init_script("Object.defineProperty(Navigator.prototype, 'webdriver', {get: () => false})")
    return page


def test_a_visit_records_its_page_views_with_the_landing_pages_utm_and_a_spa_navigation(new_page, website, artifacts):
    page = a_person(new_page())
    page.set_extra_http_headers({"User-Agent": A_PERSONS_CHROME})
    page.goto(f"{website.url}/guides/pipeline?utm_source=newsletter&utm_medium=email&utm_campaign=spring")
    assert waiting.wait_for(lambda: hit_queue().size() == 1, timeout=10.0, interval=0.1)
    page.get_by_role("link", name="Pricing").click()
    page.wait_for_url(f"{website.url}/pricing")
    # The page's own view first (on a loaded machine it could otherwise arrive after the navigation's).
    assert waiting.wait_for(lambda: hit_queue().size() == 2, timeout=10.0, interval=0.1)
    page.evaluate("history.pushState({}, '', '/pricing/annual')")  # a single-page site's navigation
    assert waiting.wait_for(lambda: hit_queue().size() == 3, timeout=10.0, interval=0.1)
    visitor_id = page.evaluate("crmTracking.visitorId()")
    page.screenshot(path=artifacts / "tracking-website.png")

    ingest.hits_ingest()
    views = list(PageView.objects.order_by("id"))
    assert [(v.path, v.is_landing) for v in views] == [("/guides/pipeline", True), ("/pricing", False), ("/pricing/annual", False)]
    for v in views:
        assert (v.visitor_id, v.kind, v.device, v.has_js) == (visitor_id, VisitorKind.HUMAN, "desktop", True)
        assert (v.utm_source, v.utm_medium, v.utm_campaign, v.landing_path) == ("newsletter", "email", "spring", "/guides/pipeline")
    assert views[1].referrer == f"{website.url}/guides/pipeline?utm_source=newsletter&utm_medium=email&utm_campaign=spring"


def test_an_automated_browser_is_recorded_as_a_bot_and_one_asking_for_privacy_is_not_recorded(new_page, website):
    robot = new_page()  # Playwright's Chromium: navigator.webdriver is true
    robot.goto(f"{website.url}/guides/pipeline")
    assert waiting.wait_for(lambda: hit_queue().size() == 1, timeout=10.0, interval=0.1)

    private = a_person(new_page())
    private.add_init_script("Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true})")
    private.goto(f"{website.url}/guides/pipeline")
    private.get_by_role("link", name="Pricing").click()
    private.wait_for_url(f"{website.url}/pricing")
    assert private.evaluate("crmTracking.visitorId()") == ""
    assert private.context.cookies() == []  # no visitor cookie either

    ingest.hits_ingest()
    [row] = PageView.objects.all()
    assert row.kind == VisitorKind.BOT and row.bot_reason


def test_a_visitor_who_sends_the_embedded_form_becomes_a_lead_whose_journey_shows_the_visit(
    new_page, live_server, tracking, artifacts, admin_client
):
    from django.core.management import call_command

    from capture.models import CaptureForm
    from capture.snippet import embed_html
    from leads.models import Lead, LeadTouch
    from tests.factories import marketer

    marketer(username="marketer")
    call_command("seed_demo_forms", verbosity=0)
    form = CaptureForm.objects.get(slug="pipeline-guide")
    form.allowed_sites = "127.0.0.1"
    form.save()
    tracking.CRM_TRACKING_SITES = ["127.0.0.1"]
    tracking.CRM_CAPTURE_MIN_FILL_SECONDS = 0
    site = Website(snippet_html(live_server.url) + embed_html(form, live_server.url))
    try:
        page = a_person(new_page())
        page.set_extra_http_headers({"User-Agent": A_PERSONS_CHROME})
        page.goto(f"{site.url}/guides/pipeline?utm_source=linkedin&utm_medium=social&utm_campaign=autumn")
        page.get_by_role("link", name="Pricing").click()
        page.wait_for_url(f"{site.url}/pricing")
        assert waiting.wait_for(lambda: hit_queue().size() == 2, timeout=10.0, interval=0.1)
        ingest.hits_ingest()

        page.get_by_label("Work email").fill("grace@example.com")
        page.get_by_label("First name").fill("Grace")
        page.get_by_label(form.consent_text).check()
        page.get_by_role("button", name="Send").click()
        page.get_by_text("The guide is on its way to your inbox.").wait_for()
        page.screenshot(path=artifacts / "capture-embedded.png")
    finally:
        site.close()

    lead = Lead.objects.get(email="grace@example.com")
    assert sorted(PageView.objects.filter(lead_id=lead.pk).values_list("path", flat=True)) == ["/guides/pipeline", "/pricing"]
    first = LeadTouch.objects.get(lead=lead, kind="first")
    assert (first.utm_source, first.utm_medium, first.utm_campaign) == ("linkedin", "social", "autumn")
    assert lead.submissions.get().consent_given and lead.submissions.get().page_url == f"{site.url}/pricing"

    journey = admin_client.get(f"/admin/leads/lead/{lead.pk}/change/").content.decode()
    journey = journey[journey.index("Journey"):]
    for text in ("linkedin", "autumn", "/guides/pipeline", "/pricing", "Download the pipeline review guide"):
        assert text in journey, text
