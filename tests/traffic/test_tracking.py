"""The tracking endpoint and its worker: page views checked and queued in the request, written in batches."""

import json
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse

from traffic import ingest
from traffic.models import PageView, TrackingSalt, TrafficDaily, Visitor, VisitorKind
from traffic.queue import hit_queue

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 2, 10, 15, tzinfo=UTC)
HIT = reverse("traffic:hit")
CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/131.0.0.0 Safari/537.36")
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.5 Mobile/15E148 Safari/604.1")
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
VISITOR = "b7f1c0de9a8e4f2a8c1d2e3f4a5b6c7d"
LANDING = "https://www.example.com/guides/pipeline?utm_source=newsletter&utm_medium=email&utm_campaign=spring&gclid=Cj0KCQ"


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def view(**fields):
    return {"v": VISITOR, "u": "https://www.example.com/pricing", "t": "Pricing", "r": "", "l": 0, "lp": LANDING,
            "w": 0, "sw": 1440, **fields}


def post(client, body, *, content_type="text/plain;charset=UTF-8", ua=CHROME, address="203.0.113.9", **headers):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post(HIT, data=data, content_type=content_type, HTTP_USER_AGENT=ua, REMOTE_ADDR=address,
                       HTTP_ACCEPT_LANGUAGE="en-GB,en;q=0.9", **headers)


def test_a_page_view_is_queued_in_the_request_and_written_by_the_worker_with_its_visits_attribution(client):
    landing = post(client, view(u=LANDING, l=1, t="The pipeline guide", r="https://news.example.net/issue/12"))
    page = post(client, view())

    assert (landing.status_code, page.status_code) == (204, 204)
    assert PageView.objects.count() == 0 and hit_queue().size() == 2  # nothing written in the request

    assert ingest.hits_ingest() == 2
    first, second = PageView.objects.order_by("id")
    assert (first.path, first.is_landing, first.title, first.referrer_host) == (
        "/guides/pipeline", True, "The pipeline guide", "news.example.net")
    for row in (first, second):
        assert (row.utm_source, row.utm_medium, row.utm_campaign, row.landing_path) == (
            "newsletter", "email", "spring", "/guides/pipeline")
        assert (row.click_id_type, row.click_id, row.device, row.kind, row.visitor_id, row.received_at) == (
            "gclid", "Cj0KCQ", "desktop", VisitorKind.HUMAN, VISITOR, NOW)
    assert (second.path, second.is_landing) == ("/pricing", False)
    assert Visitor.objects.get().first_seen_at == NOW
    assert hit_queue().size() == 0


def test_no_address_is_stored_only_a_hash_under_a_salt_that_is_deleted_after_two_days(client):
    post(client, view(), address="198.51.100.23")
    ingest.hits_ingest()
    row = PageView.objects.get()
    stored = json.dumps([getattr(row, f.attname) for f in PageView._meta.fields], default=str)
    assert "198.51.100.23" not in stored and len(row.address_hash) == 16
    assert row.address_hash == ingest.address_hash("198.51.100.23", NOW)  # the same day: bursts can be told

    with time_machine.travel(NOW + timedelta(days=2), tick=False):
        assert ingest.salts_prune() == 1
    assert not TrackingSalt.objects.filter(day=date(2026, 6, 2)).exists()
    ingest._salts.clear()
    assert ingest.address_hash("198.51.100.23", NOW) != row.address_hash  # a new salt: the old hash matches nothing


@pytest.mark.parametrize("headers", [{"HTTP_DNT": "1"}, {"HTTP_SEC_GPC": "1"}], ids=["do-not-track", "gpc"])
def test_a_browser_asking_not_to_be_tracked_is_not(client, tracking, headers):
    assert post(client, view(), **headers).status_code == 204
    assert hit_queue().size() == 0

    tracking.CRM_TRACKING_HONOR_DNT = False
    post(client, view(), **headers)
    assert hit_queue().size() == 1


def test_with_consent_required_only_hits_that_carry_consent_are_kept_and_the_pixel_records_nothing(client, tracking):
    tracking.CRM_TRACKING_CONSENT = "required"
    post(client, view())
    post(client, view(c=0))
    client.get(reverse("traffic:pixel"), HTTP_REFERER="https://www.example.com/", HTTP_USER_AGENT=CHROME)
    assert hit_queue().size() == 0

    post(client, view(c=1))
    assert hit_queue().size() == 1


BAD = {
    "not JSON": (b"{nope", "text/plain", 400, None),
    "not an object": (b"[1, 2]", "text/plain", 400, None),
    "an unknown field": ({**view(), "email": "ada@example.org"}, "text/plain", 400, "email"),
    "no page address": (view(u=""), "text/plain", 400, "u"),
    "a page address that is not http": (view(u="javascript:alert(1)"), "text/plain", 400, "u"),
    "a visitor id that is too short": (view(v="abc"), "text/plain", 400, "v"),
    "a visitor id with a script": (view(v="<script>alert(1)</script>xx"), "text/plain", 400, "v"),
    "a screen width that is not a number": (view(sw="wide"), "text/plain", 400, "sw"),
    "a landing flag that is not 0 or 1": (view(l="yes"), "text/plain", 400, "l"),
    "a referrer that is not an address": (view(r="not a url"), "text/plain", 400, "r"),
    "a site the CRM does not track": (view(u="https://evil.example.net/"), "text/plain", 403, "u"),
    "a form post": ({"v": VISITOR}, "application/x-www-form-urlencoded", 415, None),
    "too big": (json.dumps(view(t="x" * 5000)), "text/plain", 413, None),
}


@pytest.mark.parametrize("body, content_type, status, field", BAD.values(), ids=BAD.keys())
def test_bad_input_gets_a_clear_error_naming_the_field_and_nothing_is_queued(client, body, content_type, status, field):
    if content_type == "application/x-www-form-urlencoded":
        response = client.post(HIT, body, HTTP_USER_AGENT=CHROME)
    else:
        response = post(client, body, content_type=content_type)

    assert response.status_code == status
    assert response.json()["error"]
    assert response.json().get("field") == field
    assert hit_queue().size() == 0


def test_subdomains_are_allowed_when_the_site_is_given_with_a_leading_dot(client):
    assert post(client, view(u="https://blog.example.org/post", lp="")).status_code == 204
    assert post(client, view(u="https://example.org.evil.net/", lp="")).status_code == 403


def test_the_endpoint_answers_the_browsers_preflight_and_names_the_origin(client):
    response = client.options(HIT, HTTP_ORIGIN="https://www.example.com")
    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == "https://www.example.com"
    assert response["Access-Control-Allow-Headers"] == "Content-Type"
    assert "POST" in response["Access-Control-Allow-Methods"]
    answer = post(client, view(), HTTP_ORIGIN="https://www.example.com")
    assert answer["Access-Control-Allow-Origin"] == "https://www.example.com"
    assert answer["Vary"] == "Origin"
    # What only a preflight needs is not sent with every page view.
    assert not answer.has_header("Access-Control-Allow-Methods")


def test_a_script_in_the_title_is_kept_as_text(client):
    post(client, view(t="<script>alert('x')</script>"))
    ingest.hits_ingest()
    assert PageView.objects.get().title == "<script>alert('x')</script>"


# --- Bots, the team, customers -----------------------------------------------------------------


def test_crawlers_and_automated_browsers_are_kept_apart_with_the_reason(client):
    post(client, view(), ua=GOOGLEBOT)
    post(client, view(v="c" * 32, w=1))  # navigator.webdriver
    post(client, view(v="d" * 32), ua=IPHONE)
    ingest.hits_ingest()

    rows = {row.visitor_id: row for row in PageView.objects.all()}
    assert rows[VISITOR].kind == VisitorKind.BOT and rows[VISITOR].bot_reason.startswith("crawler")
    assert rows["c" * 32].kind == VisitorKind.BOT and "webdriver" in rows["c" * 32].bot_reason
    assert (rows["d" * 32].kind, rows["d" * 32].device, rows["d" * 32].bot_reason) == (VisitorKind.HUMAN, "mobile", "")


def test_the_no_script_pixel_records_the_page_from_the_referer_and_a_hit_without_a_language_is_a_bot(client):
    pixel = reverse("traffic:pixel")
    response = client.get(pixel, HTTP_REFERER="https://www.example.com/about", HTTP_USER_AGENT=CHROME,
                          HTTP_ACCEPT_LANGUAGE="de-DE", REMOTE_ADDR="203.0.113.7")
    client.get(pixel, HTTP_REFERER="https://www.example.com/about", HTTP_USER_AGENT=CHROME, REMOTE_ADDR="203.0.113.8")
    client.get(pixel, HTTP_REFERER="https://evil.example.net/", HTTP_USER_AGENT=CHROME)  # not a tracked site
    client.get(pixel, HTTP_USER_AGENT=CHROME)  # no page: nothing

    assert (response.status_code, response["Content-Type"]) == (200, "image/gif")
    ingest.hits_ingest()
    person, bot = PageView.objects.order_by("id")
    assert (person.path, person.has_js, person.kind, person.visitor_id[:5]) == ("/about", False, VisitorKind.HUMAN, "nojs-")
    assert (bot.kind, bot.bot_reason) == (VisitorKind.BOT, "no-JS hit without Accept-Language")


def test_a_burst_from_one_address_is_a_bot_past_the_limit(client, tracking):
    tracking.CRM_TRACKING_BURST_PER_MINUTE = 5
    for i in range(8):
        post(client, view(v=f"{i:032d}"), address="192.0.2.50")
    post(client, view(v="e" * 32), address="192.0.2.51")
    ingest.hits_ingest()

    kinds = list(PageView.objects.order_by("id").values_list("kind", flat=True))
    assert kinds == [VisitorKind.HUMAN] * 5 + [VisitorKind.BOT] * 3 + [VisitorKind.HUMAN]
    assert PageView.objects.filter(kind=VisitorKind.BOT).first().bot_reason == "burst: 6 hits in a minute from one address"


def test_the_teams_networks_and_known_customers_are_marked(client, tracking):
    tracking.CRM_TRACKING_TEAM_NETWORKS = ["10.20.0.0/16", "2001:db8::/32"]
    Visitor.objects.create(visitor_id="f" * 32, first_seen_at=NOW - timedelta(days=30), kind=VisitorKind.CUSTOMER, lead_id=77)
    post(client, view(), address="10.20.3.4")
    post(client, view(v="a" * 32), address="2001:db8::1")
    post(client, view(v="f" * 32))
    ingest.hits_ingest()

    assert dict(PageView.objects.values_list("visitor_id", "kind")) == {
        VISITOR: VisitorKind.TEAM, "a" * 32: VisitorKind.TEAM, "f" * 32: VisitorKind.CUSTOMER,
    }
    assert PageView.objects.get(visitor_id="f" * 32).lead_id == 77


# --- The queue: nothing lost, nothing doubled ---------------------------------------------------


def test_a_batch_that_fails_stays_queued_and_is_written_once_when_drained_again(client, monkeypatch):
    for i in range(3):
        post(client, view(v=f"{i:032d}"))

    def crash(*args, **kwargs):
        raise RuntimeError("database went away")

    real = PageView.objects.bulk_create
    monkeypatch.setattr(PageView.objects, "bulk_create", crash)
    with pytest.raises(RuntimeError):
        ingest.hits_ingest()
    monkeypatch.setattr(PageView.objects, "bulk_create", real)
    assert hit_queue().size() == 3 and PageView.objects.count() == 0

    assert ingest.hits_ingest() == 3
    assert PageView.objects.count() == 3


def test_a_hit_delivered_twice_is_one_page_view(client):
    post(client, view())
    with hit_queue().drain(10) as hits:
        [hit] = hits
    hit_queue().push(hit)
    hit_queue().push(hit)
    ingest.hits_ingest()
    ingest.hits_ingest()
    assert PageView.objects.count() == 1


def test_writers_racing_a_drain_lose_no_hit(tmp_path):
    import threading

    from traffic.queue import SpoolQueue

    queue = SpoolQueue(tmp_path / "race")
    drained, stop = [], threading.Event()

    def write(n):
        for i in range(300):
            queue.push({"id": f"{n}-{i}"})

    def drain():
        while not stop.is_set():
            with queue.drain(10_000) as hits:
                drained.extend(h["id"] for h in hits)

    drainer = threading.Thread(target=drain)
    drainer.start()
    writers = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    stop.set()
    drainer.join()
    with queue.drain(10_000) as hits:
        drained.extend(h["id"] for h in hits)

    assert sorted(drained) == sorted(f"{n}-{i}" for n in range(4) for i in range(300))


def test_a_drain_arriving_in_the_middle_of_every_write_makes_none_fail(tmp_path, monkeypatch):
    """A drain that comes for the spool just as each writer has opened it: the writer finishes its line first
    (the drain waits for the spool's lock), and the drain then takes it. Before, each such drain moved the file
    away from under the writer, which tried again and gave up after ten moves with QueueFull."""
    import os
    import threading

    from traffic.queue import SpoolQueue

    queue = SpoolQueue(tmp_path / "spool")
    drained, drains = [], []
    real_open = os.open

    def drain():
        with queue.drain(100) as hits:
            drained.extend(h["id"] for h in hits)

    def open_and_send_a_drain(path, flags, *args, **kwargs):
        fd = real_open(path, flags, *args, **kwargs)
        if flags & os.O_APPEND and os.fspath(path) == os.fspath(queue.current):  # a writer opening the spool
            drains.append(threading.Thread(target=drain))
            drains[-1].start()
            drains[-1].join(timeout=0.1)  # the drain's chance to take the file now
        return fd

    monkeypatch.setattr(os, "open", open_and_send_a_drain)
    for i in range(10):
        queue.push({"id": f"hit-{i}"})
    for thread in drains:
        thread.join()
    monkeypatch.undo()
    drain()

    assert sorted(drained) == sorted(f"hit-{i}" for i in range(10))


def test_a_full_queue_answers_503_and_the_hit_is_not_counted(client, tracking):
    tracking.CRM_TRACKING_QUEUE_MAX = 2  # the spool counts about a kilobyte a hit
    statuses = [post(client, view(v=f"{i:032d}")).status_code for i in range(10)]
    accepted = statuses.count(204)
    assert 2 <= accepted <= 5 and statuses[accepted:] == [503] * (10 - accepted)
    assert hit_queue().size() == accepted
    assert "not recorded" in post(client, view()).json()["error"]


def test_a_queue_whose_redis_does_not_answer_refuses_the_hit_with_503_and_retry_after(tracking):
    from django.test import Client

    from tests.smtp_sink import free_port

    tracking.CRM_TRACKING_QUEUE_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    response = post(Client(raise_request_exception=False), view())
    assert response.status_code == 503 and int(response["Retry-After"]) > 0
    assert "not recorded" in response.json()["error"]


# --- Reports' rollup ------------------------------------------------------------------------------


def test_the_daily_rollup_counts_people_apart_from_bots_by_source_and_landing_page(client):
    post(client, view(u=LANDING, l=1))
    post(client, view())
    post(client, view(v="a" * 32, u=LANDING, l=1))
    post(client, view(v="b" * 32), ua=GOOGLEBOT)
    ingest.hits_ingest()

    assert ingest.traffic_rollup(NOW.date()) == 2
    rows = {r.kind: r for r in TrafficDaily.objects.filter(day=NOW.date())}
    human = rows[VisitorKind.HUMAN]
    assert (human.utm_source, human.utm_campaign, human.landing_path) == ("newsletter", "spring", "/guides/pipeline")
    assert (human.views, human.visitors, human.landings) == (3, 2, 2)
    assert (rows[VisitorKind.BOT].views, rows[VisitorKind.BOT].visitors) == (1, 1)

    ingest.traffic_rollup(NOW.date())  # rebuilt, not added to
    assert TrafficDaily.objects.filter(day=NOW.date()).count() == 2


def test_the_snippet_points_at_this_crm_and_drops_the_pixel_when_consent_is_required(tracking):
    from traffic.snippet import snippet_html

    html = snippet_html("https://crm.example.com/")
    assert 'src="https://crm.example.com/static/traffic/t.js"' in html and 'data-endpoint="https://crm.example.com/t/hit"' in html
    assert '<img src="https://crm.example.com/t/p.gif"' in html

    tracking.CRM_TRACKING_CONSENT = "required"
    html = snippet_html("https://crm.example.com")
    assert 'data-consent="required"' in html and "p.gif" not in html


def test_the_script_is_served_by_the_app_and_is_small(client):
    response = client.get("/static/traffic/t.js")
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert response.status_code == 200 and b"crmTracking" in body
    assert len(body) < 6000


def test_settings_that_cannot_work_are_reported_by_manage_py_check(tracking):
    from traffic.checks import check_tracking_settings, check_tracking_sites

    assert check_tracking_settings() == []
    tracking.CRM_TRACKING_CONSENT = "maybe"
    tracking.CRM_TRACKING_TEAM_NETWORKS = ["10.0.0.0/8", "the office"]
    assert [p.id for p in check_tracking_settings()] == ["traffic.E001", "traffic.E002"]
    assert check_tracking_sites() == []
    tracking.CRM_TRACKING_SITES = []
    assert [p.id for p in check_tracking_sites()] == ["traffic.W001"]


def test_managers_read_traffic_in_the_admin_people_and_bots_apart(client, manager_user):
    post(client, view(u=LANDING, l=1))
    post(client, view(v="b" * 32), ua=GOOGLEBOT)
    ingest.hits_ingest()
    ingest.traffic_rollup(NOW.date())
    client.force_login(manager_user)

    daily = client.get(reverse("admin:traffic_trafficdaily_changelist"), {"kind__exact": "bot"}).content.decode()
    assert 'field-kind">Bot' in daily and 'field-kind">Person' not in daily
    views = client.get(reverse("admin:traffic_pageview_changelist"), {"q": VISITOR})
    assert views.status_code == 200 and "/guides/pipeline" in views.content.decode()
    assert client.get(reverse("admin:traffic_pageview_add")).status_code == 403
