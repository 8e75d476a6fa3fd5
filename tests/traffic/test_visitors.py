"""The daily human visitor sets (traffic.visitors): written with the page views, they give the same distinct
counts as the page views themselves, over any range and slice, on the team's clock."""

import random
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from tests.traffic.test_tracking import CHROME, GOOGLEBOT, post, view
from traffic import ingest
from traffic.models import DailyVisitors, PageView, VisitorKind
from traffic.visitors import distinct_visitors

pytestmark = pytest.mark.django_db

SOURCES, MEDIUMS, PAGES = ("ads", "news", ""), ("cpc", "email", ""), ("/", "/pricing", "/blog/a")


def counted_from_page_views(start: date, end: date, **narrow) -> int:
    """The second computation: distinct visitor ids of human page views on those days, in Python."""
    return len({
        v.visitor_id for v in PageView.objects.all()
        if v.kind == VisitorKind.HUMAN and start <= timezone.localdate(v.received_at) <= end
        and all(getattr(v, name) == value for name, value in narrow.items())
    })


def random_views(seed: int, n: int = 400) -> list[PageView]:
    rng = random.Random(seed)
    start = datetime(2026, 3, 1, tzinfo=UTC)
    return [
        PageView(hit_id=uuid.uuid4(), received_at=start + timedelta(minutes=rng.randrange(60 * 24 * 45)),
                 visitor_id=f"visitor-{rng.randrange(120):04d}-abcdefgh", url="https://x.test/", host="x.test",
                 path="/", kind=rng.choice([VisitorKind.HUMAN] * 4 + [VisitorKind.BOT, VisitorKind.CUSTOMER]),
                 utm_source=rng.choice(SOURCES), utm_medium=rng.choice(MEDIUMS), landing_path=rng.choice(PAGES))
        for _ in range(n)
    ]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_any_range_and_slice_counts_what_the_page_views_say(seed):
    views = random_views(seed)
    for start in range(0, len(views), 37):  # in batches, as the worker writes them
        ingest.page_views_write(views[start:start + 37])
    rng = random.Random(seed)
    for _ in range(25):
        first = date(2026, 2, 28) + timedelta(days=rng.randrange(50))
        last = first + timedelta(days=rng.randrange(20))
        narrow = rng.choice([{}, {"utm_source": rng.choice(SOURCES)}, {"landing_path": rng.choice(PAGES)},
                             {"utm_source": rng.choice(SOURCES), "utm_medium": rng.choice(MEDIUMS)}])
        assert distinct_visitors(first, last, **narrow) == counted_from_page_views(first, last, **narrow), (
            seed, first, last, narrow)


def test_a_rebuild_gives_the_sets_the_writes_made():
    ingest.page_views_write(random_views(7))
    made = {(s.day, s.whole_day, s.utm_source, s.utm_medium, s.landing_path): s.count
            for s in DailyVisitors.objects.all()}
    DailyVisitors.objects.all().delete()
    call_command("traffic_visitors_rebuild", verbosity=0)
    assert {(s.day, s.whole_day, s.utm_source, s.utm_medium, s.landing_path): s.count
            for s in DailyVisitors.objects.all()} == made
    assert distinct_visitors(date(2026, 3, 1), date(2026, 4, 30)) == counted_from_page_views(
        date(2026, 3, 1), date(2026, 4, 30))


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/Los_Angeles"])
def test_a_day_is_the_teams_day(settings, zone):
    settings.TIME_ZONE = zone
    local = timezone.get_current_timezone()
    late = datetime(2026, 3, 29, 23, 30, tzinfo=local)  # Berlin's clocks moved forward that morning
    ingest.page_views_write([
        PageView(hit_id=uuid.uuid4(), received_at=late, visitor_id="late-visitor-0001", url="https://x.test/",
                 host="x.test", path="/"),
        PageView(hit_id=uuid.uuid4(), received_at=late + timedelta(hours=1), visitor_id="early-visitor-001",
                 url="https://x.test/", host="x.test", path="/"),
    ])
    assert distinct_visitors(date(2026, 3, 29), date(2026, 3, 29)) == 1
    assert distinct_visitors(date(2026, 3, 30), date(2026, 3, 30)) == 1
    assert distinct_visitors(date(2026, 3, 29), date(2026, 3, 30)) == 2


def test_hits_through_the_endpoint_count_their_people_once_and_bots_never(client):
    with time_machine.travel(datetime(2026, 6, 2, 10, 15, tzinfo=UTC), tick=False):
        for _ in range(3):
            post(client, view(), ua=CHROME)
        post(client, view(v="a1b2c3d4e5f6a7b8c9d0"), ua=GOOGLEBOT)
        ingest.hits_ingest()
        # The queue delivered a hit twice: the same visitor, counted once.
        ingest.page_views_write(list(PageView.objects.filter(kind=VisitorKind.HUMAN)[:1]))
    day = date(2026, 6, 2)
    assert distinct_visitors(day, day) == 1
    assert distinct_visitors(day, day, utm_source="newsletter", landing_path="/guides/pipeline") == 1
    assert distinct_visitors(day, day, utm_source="ads") == 0


def test_an_unknown_slice_is_refused():
    with pytest.raises(TypeError, match="cannot narrow by persona"):
        distinct_visitors(date(2026, 3, 1), date(2026, 3, 2), persona=1)


@pytest.mark.integration
def test_batches_and_a_rebuild_of_one_day_at_once_lose_no_visitor(postgres_db):
    # On PostgreSQL, where they really run at once: four batches of new visitors for one day and one attribution
    # (the first makes the day's sets, the others add to them), and a rebuild of that day in the middle.
    import threading

    from django.db import connection

    from traffic.visitors import visitors_rebuild_day

    day = datetime(2026, 3, 10, 12, tzinfo=UTC)
    ingest.page_views_write([PageView(hit_id=uuid.uuid4(), received_at=day, visitor_id="earlier-visitor-0001",
                                      url="https://x.test/", host="x.test", path="/", utm_source="ads")])
    barrier, errors = threading.Barrier(5), []

    def batch(n):
        try:
            barrier.wait()
            ingest.page_views_write([
                PageView(hit_id=uuid.uuid4(), received_at=day + timedelta(minutes=i), visitor_id=f"batch{n}-visitor-{i:04d}",
                         url="https://x.test/", host="x.test", path="/", utm_source="ads")
                for i in range(50)
            ])
        except Exception as error:  # noqa: BLE001 (the test reports what failed in the thread)
            errors.append(error)
        finally:
            connection.close()

    def rebuild():
        try:
            barrier.wait()
            visitors_rebuild_day(timezone.localdate(day))
        except Exception as error:  # noqa: BLE001
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=batch, args=(n,)) for n in range(4)] + [threading.Thread(target=rebuild)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    local_day = timezone.localdate(day)
    assert distinct_visitors(local_day, local_day) == 201 == counted_from_page_views(local_day, local_day)
    assert distinct_visitors(local_day, local_day, utm_source="ads") == 201
