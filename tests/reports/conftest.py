"""A small pipeline whose every figure is worked out by hand in the tests, dated in the team's time zone."""

from datetime import date, datetime

import pytest
import time_machine
from django.utils import timezone

from leads import services
from leads.merging import lead_merge
from tests.factories import LeadFactory, SourceFactory
from traffic.ingest import page_views_write
from traffic.models import PageView


def local(*parts) -> datetime:
    """A moment on the team's clock (TIME_ZONE), e.g. local(2026, 3, 31, 23, 30)."""
    return timezone.make_aware(datetime(*parts), timezone.get_current_timezone())


def view(visitor: str, at: datetime, kind: str = "human", **fields) -> PageView:
    import uuid

    row = PageView(hit_id=uuid.uuid4(), received_at=at, visitor_id=visitor, url="https://x.test/", host="x.test",
                   path="/", kind=kind, **fields)
    page_views_write([row])  # as the tracking worker writes them: with the day's visitor sets
    return row


class Pipeline:
    """Leads, stage moves and deals around March 2026 (the range the tests ask about)."""

    def __init__(self, boss):
        self.boss = boss
        self.ads = SourceFactory(slug="ads", name="Ads")
        by = {"by": boss}
        move = services.lead_change_stage

        # L1: created 2 Mar, MQL 5 Mar, SQL 10 Mar, a deal opened 12 Mar, won 20 Mar (1000 EUR). From ads.
        self.l1 = LeadFactory(created_at=local(2026, 3, 2, 10), source=self.ads, **by)
        move(lead=self.l1, to_status="mql", at=local(2026, 3, 5, 10), **by)
        move(lead=self.l1, to_status="sql", at=local(2026, 3, 10, 10), **by)
        self.l1_deal = services.deal_open(lead=self.l1, value=1000, currency="EUR", at=local(2026, 3, 12, 10), **by)
        services.lead_convert_to_customer(lead=self.l1, deal_value=1000, currency="EUR", at=local(2026, 3, 20, 10), **by)
        # L2: created 3 Mar, straight to SQL on 4 Mar (MQL skipped), lost 6 Mar.
        self.l2 = LeadFactory(created_at=local(2026, 3, 3, 10), **by)
        move(lead=self.l2, to_status="sql", at=local(2026, 3, 4, 10), **by)
        move(lead=self.l2, to_status="lost", reason="No budget", at=local(2026, 3, 6, 10), **by)
        # L3: created in the last half hour of March, MQL just after midnight on 1 April.
        self.l3 = LeadFactory(created_at=local(2026, 3, 31, 23, 30), **by)
        move(lead=self.l3, to_status="mql", at=local(2026, 4, 1, 0, 30), **by)
        # L4: created the last minute of February; MQL 1 Mar, recycled to nurturing 2 Mar, MQL again 3 Mar.
        self.l4 = LeadFactory(created_at=local(2026, 2, 28, 23, 59), **by)
        move(lead=self.l4, to_status="mql", at=local(2026, 3, 1, 10), **by)
        move(lead=self.l4, to_status="nurturing", at=local(2026, 3, 2, 10), **by)
        move(lead=self.l4, to_status="mql", at=local(2026, 3, 3, 10), **by)
        # L5 created 15 Mar, still new; L6, created 16 Mar, is the same person: merged into L5.
        self.l5 = LeadFactory(created_at=local(2026, 3, 15, 10), email="", phone="+1 555 0100", **by)
        self.l6 = LeadFactory(created_at=local(2026, 3, 16, 10), **by)
        lead_merge(keep=self.l5, merge=self.l6, by=boss)
        # L7: created 1 Feb, a 500 USD deal opened that day, lost 10 Mar.
        self.l7 = LeadFactory(created_at=local(2026, 2, 1, 9), **by)
        self.l7_deal = services.deal_open(lead=self.l7, value=500, currency="USD", at=local(2026, 2, 1, 10), **by)
        services.deal_mark_lost(deal=self.l7_deal, reason="Competitor", at=local(2026, 3, 10, 10), **by)
        # L8: created 1 Jan, a deal opened 5 Jan, won in the last half hour of March (2000 EUR).
        self.l8 = LeadFactory(created_at=local(2026, 1, 1, 10), **by)
        self.l8_deal = services.deal_open(lead=self.l8, value=2000, currency="EUR", at=local(2026, 1, 5, 10), **by)
        services.lead_convert_to_customer(lead=self.l8, deal_value=2000, currency="EUR", at=local(2026, 3, 31, 23, 30),
                                          **by)
        # L9: a deal still open; L10: won just after March.
        self.l9 = LeadFactory(created_at=local(2026, 1, 2, 10), **by)
        services.deal_open(lead=self.l9, value=700, currency="EUR", at=local(2026, 1, 3, 10), **by)
        self.l10 = LeadFactory(created_at=local(2026, 1, 3, 10), **by)
        services.lead_convert_to_customer(lead=self.l10, deal_value=900, currency="EUR", at=local(2026, 4, 1, 0, 30),
                                          **by)


@pytest.fixture
def pipeline(db, manager_user):
    with time_machine.travel(local(2026, 4, 15, 12), tick=False):
        yield Pipeline(manager_user)


@pytest.fixture
def with_may_deal(pipeline, settings):
    """The pipeline on 15 April, with two stage probabilities set and L3 (an MQL) given a 1000 EUR deal expected to
    close on 20 May: it moves to Opportunity."""
    settings.CRM_STAGE_WIN_PROBABILITY = {"sql": 0.2, "opportunity": 0.4}
    with time_machine.travel(local(2026, 4, 15, 12), tick=False):
        services.deal_open(lead=pipeline.l3, value=1000, currency="EUR", expected_close_on=date(2026, 5, 20),
                           by=pipeline.boss)
        yield pipeline
