"""The nurturing report for March 2026: two sequences' emails, what people did with them, and revenue influenced."""

from datetime import date
from decimal import Decimal

import pytest
import time_machine

from core.events import Actor
from leads import services
from nurturing.models import Delivery, EmailEvent
from nurturing.services import enrollment_create
from reports.ranges import DateRange, Slice
from reports.selectors.nurturing import influenced_deals, sequence_rows
from tests.factories import LeadFactory, sequence_with_steps
from tests.reports.conftest import local

MARCH = DateRange(date(2026, 3, 1), date(2026, 3, 31))


def sent(enrollment, position, at):
    return Delivery.objects.create(enrollment=enrollment, step=enrollment.sequence.steps.get(position=position),
                                   status=Delivery.Status.SENT, due_at=at, sent_at=at)


def event(delivery, kind, at, *, machine=False, n=0):
    EmailEvent.objects.create(delivery=delivery, lead=delivery.enrollment.lead, kind=kind, is_machine=machine,
                              provider="test", occurred_at=at, dedupe_key=f"{delivery.pk}-{kind}-{machine}-{n}")


@pytest.fixture
def march(db, manager_user):
    with time_machine.travel(local(2026, 4, 15, 12), tick=False):
        by = {"by": manager_user}
        welcome = sequence_with_steps({}, {}, name="Welcome")
        pricing = sequence_with_steps({}, name="Pricing")
        a, b, c = (LeadFactory(created_at=local(2026, 3, 1, 9), **by) for _ in range(3))
        ea, eb, ec = (enrollment_create(lead=lead, sequence=welcome, at=local(2026, 3, 1, 10)) for lead in (a, b, c))
        pa = enrollment_create(lead=a, sequence=pricing, at=local(2026, 3, 1, 10))
        Delivery.objects.all().delete()  # the engine's scheduled rows: the test writes what was sent
        a1 = sent(ea, 1, local(2026, 3, 2, 10))
        event(a1, "opened", local(2026, 3, 2, 11))
        event(a1, "opened", local(2026, 3, 2, 12), n=1)  # twice: one email opened
        event(a1, "clicked", local(2026, 3, 2, 12))
        b1 = sent(eb, 1, local(2026, 3, 2, 10))
        event(b1, "opened", local(2026, 3, 2, 10, 1), machine=True)  # a privacy proxy, not a person
        event(b1, "unsubscribed", local(2026, 3, 3, 10))
        c1 = sent(ec, 1, local(2026, 3, 31, 23, 30))
        event(c1, "bounced", local(2026, 3, 31, 23, 31))
        sent(ea, 2, local(2026, 4, 1, 10))  # April: not March's
        t1 = sent(pa, 1, local(2026, 3, 5, 10))
        event(t1, "replied", local(2026, 3, 6, 10))
        # The Welcome sequence moved A to MQL on 3 Mar.
        with time_machine.travel(local(2026, 3, 3, 10), tick=False):
            services.lead_stage_action(
                lead=a, to_status="mql", actor="Welcome", reason="Clicked",
                source=Actor.sequence(sequence_id=welcome.pk, step_id=welcome.steps.get(position=1).pk))
        # A won 800 EUR on 20 Mar (after both sequences' emails); C won 100 USD on 1 Mar, before any email.
        a.refresh_from_db()
        services.lead_convert_to_customer(lead=a, deal_value=800, currency="EUR", at=local(2026, 3, 20, 10), **by)
        services.lead_convert_to_customer(lead=c, deal_value=100, currency="USD", at=local(2026, 3, 1, 12), **by)
        yield {"welcome": welcome, "pricing": pricing, "a": a}


def test_each_sequence_counts_its_emails_sent_in_march_and_what_people_did(march):
    rows = {row.name: row for row in sequence_rows(MARCH, Slice())}

    welcome, pricing = rows["Welcome"], rows["Pricing"]
    assert (welcome.sent, welcome.opened, welcome.clicked, welcome.replied, welcome.unsubscribed, welcome.bounced) == (
        3, 1, 1, 0, 1, 1)
    assert welcome.advances == 1 and welcome.open_rate == 1 / 3
    assert (pricing.sent, pricing.opened, pricing.replied, pricing.advances) == (1, 0, 1, 0)


def test_revenue_influenced_counts_deals_won_after_an_email_of_the_sequence(march):
    rows = {row.name: row for row in sequence_rows(MARCH, Slice())}

    # A's 800 EUR was won after emails of both; C's 100 USD before any email: influenced by neither.
    assert rows["Welcome"].influenced == {"EUR": Decimal("800.00")}
    assert rows["Pricing"].influenced == {"EUR": Decimal("800.00")}
    assert list(influenced_deals(MARCH, Slice(), march["welcome"].pk).values_list("lead", flat=True)) == [march["a"].pk]


def test_the_dashboard_shows_the_sequences_to_marketers(client, march, marketer_user):
    client.force_login(marketer_user)
    with time_machine.travel(local(2026, 4, 15, 12), tick=False):
        page = client.get("/reports/nurturing/", {"start": "2026-03-01", "end": "2026-03-31"})
    assert [row.name for row in page.context["sequences"]] == ["Pricing", "Welcome"]
    assert "800.00 EUR" in page.content.decode()


def test_every_count_of_a_sequence_drills_down_to_as_many_rows(client, march, marketer_user):
    client.force_login(marketer_user)
    month = {"start": "2026-03-01", "end": "2026-03-31"}
    with time_machine.travel(local(2026, 4, 15, 12), tick=False):
        page = client.get("/reports/nurturing/", month)
        welcome = next(row for row in page.context["sequences"] if row.name == "Welcome")
        html = page.content.decode()
        for counted in ("sent", "opened", "clicked", "replied", "unsubscribed", "bounced", "advances", "influenced"):
            listing = client.get(f"/reports/figures/sequence-{counted}/", {**month, "sequence": welcome.sequence_id})
            assert listing.status_code == 200, counted
            expected = 1 if counted == "influenced" else getattr(welcome, counted)
            assert listing.context["page"].paginator.count == expected, counted
            assert "Sequence: Welcome" in listing.content.decode()
            if expected:
                assert (f'href="/reports/figures/sequence-{counted}/?start=2026-03-01&amp;end=2026-03-31&amp;'
                        f'sequence={welcome.sequence_id}"') in html, counted
        # The machine open of B's email is not behind "opened"; A's two opens are one email.
        opened = client.get("/reports/figures/sequence-opened/", {**month, "sequence": welcome.sequence_id})
        assert [row[0] for row in opened.context["rows"]] == [march["a"].pk]
        for bad, says in (({"sequence": "x"}, "by its number"), ({"sequence": 999999}, "no sequence #999999"), ({}, "")):
            wrong = client.get("/reports/figures/sequence-sent/", {**month, **bad})
            assert wrong.status_code == 400 and says in wrong.content.decode()
