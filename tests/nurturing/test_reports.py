"""Engagement reports: each number of a sequence's report, who may read it, and a lead's email events."""

import itertools
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from core.events import Actor
from leads import services as lead_services
from nurturing import services
from nurturing.claim import deliveries_claim
from nurturing.dispatch import deliveries_send
from nurturing.engagement import IncomingEvent, event_record
from nurturing.models import Delivery, EmailEvent, Enrollment, Sequence, Step
from nurturing.reports import sequence_report
from tests.factories import LeadFactory, UserFactory, sequence_with_steps

pytestmark = pytest.mark.django_db

MONDAY_10_UTC = datetime(2026, 11, 23, 10, 0, tzinfo=dt_timezone.utc)
PERSON = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15"
APPLE_PROXY = "Mozilla/5.0"
SCANNER = "python-requests/2.31"
_event_ids = itertools.count(1)


def run_once():
    token, ids = deliveries_claim(limit=100)
    return deliveries_send(ids=ids, token=token) if ids else None


def record(delivery, kind, *, minutes, agent="", **fields):
    """One event on a delivery, `minutes` after the first send, through the engagement rules."""
    return event_record(IncomingEvent(
        provider="test", kind=kind, occurred_at=MONDAY_10_UTC + timedelta(minutes=minutes), event_id=f"ev-{next(_event_ids)}",
        recipient=delivery.to_email, user_agent=agent, delivery=delivery, **fields,
    ))


@pytest.fixture
def campaign(mailbox):
    """Two steps sent to four leads (A B C D), with what each of them did.

    Step 1 moves leads to Nurturing when sent, and a person's click on /pricing moves them to MQL.
    Step 1: A opens twice and clicks /pricing (a person), Apple's proxy opens A's and B's copy, a
    scanner clicks B's; B's is delivered; C replies (and leaves); D hard-bounces (and leaves).
    Step 2 goes to A and B only: A complains; B opens, soft-bounces, then unsubscribes.
    """
    sequence = sequence_with_steps(
        {"stage_action": "nurturing", "click_link_contains": "/pricing", "click_stage_action": "mql"}, {}, name="Welcome"
    )
    a, b, c, d = leads = [LeadFactory(first_name=name) for name in "ABCD"]
    with time_machine.travel(MONDAY_10_UTC, tick=False):
        for lead in leads:
            services.enrollment_create(lead=lead, sequence=sequence)
        assert run_once().sent == 4
    first = {lead: Delivery.objects.get(enrollment__lead=lead, step__position=1) for lead in leads}
    with time_machine.travel(MONDAY_10_UTC + timedelta(hours=1), tick=False):
        record(first[a], "opened", minutes=30, agent=PERSON)
        record(first[a], "opened", minutes=40, agent=PERSON)
        record(first[a], "clicked", minutes=41, agent=PERSON, url="https://example.com/pricing?plan=team")
        record(first[a], "opened", minutes=1, agent=APPLE_PROXY)
        record(first[b], "opened", minutes=1, agent=APPLE_PROXY)
        record(first[b], "clicked", minutes=2, agent=SCANNER, url="https://example.com/pricing")
        record(first[b], "delivered", minutes=0)
        record(first[c], "replied", minutes=50, description="Call me on Tuesday")
        record(first[d], "bounced", minutes=0, bounce="hard", description="550 user unknown")
    with time_machine.travel(MONDAY_10_UTC + timedelta(hours=2), tick=False):
        assert run_once().sent == 2
        second = {lead: Delivery.objects.get(enrollment__lead=lead, step__position=2) for lead in (a, b)}
    with time_machine.travel(MONDAY_10_UTC + timedelta(hours=3), tick=False):
        record(second[a], "complained", minutes=170)
        record(second[b], "opened", minutes=150, agent=PERSON)
        record(second[b], "bounced", minutes=160, bounce="soft", description="mailbox full")
        record(second[b], "unsubscribed", minutes=175)
    # A move by another automation whose actor merely starts like step 1's: not this step's.
    lead_services.lead_change_stage(lead=c, to_status="mql", actor="sequence Welcome step 12")
    return sequence, leads


def test_each_step_counts_emails_sent_and_what_people_did_with_them(campaign):
    sequence, _ = campaign
    report = sequence_report(sequence=sequence)
    step1, step2 = report.rows

    assert (step1.step.position, step1.sent, step1.delivered) == (1, 4, 1)
    assert (step1.opened, step1.opens, step1.clicked, step1.clicks) == (1, 2, 1, 1)
    assert (step1.replied, step1.unsubscribed, step1.complained) == (1, 0, 0)
    assert (step1.bounced, step1.bounced_hard, step1.bounced_soft) == (1, 1, 0)
    assert (step1.open_rate, step1.click_rate, step1.reply_rate, step1.unsubscribe_rate, step1.bounce_rate) == (25.0, 25.0, 25.0, 0.0, 25.0)

    assert (step2.sent, step2.opened, step2.opens, step2.clicked) == (2, 1, 1, 0)
    assert (step2.complained, step2.unsubscribed, step2.replied) == (1, 1, 0)
    assert (step2.bounced, step2.bounced_hard, step2.bounced_soft) == (1, 0, 1)
    assert (step2.open_rate, step2.unsubscribe_rate, step2.bounce_rate) == (50.0, 50.0, 50.0)


def test_machine_opens_and_clicks_are_counted_apart_and_in_no_human_number(campaign):
    sequence, (a, b, *_) = campaign
    step1 = sequence_report(sequence=sequence).rows[0]

    assert (step1.machine_opens, step1.machine_clicks) == (2, 1)
    # B's copy was opened by Apple's proxy and clicked by a scanner only: B is in no human number.
    assert EmailEvent.objects.filter(lead=b, is_machine=True).count() == 2
    assert (step1.opened, step1.clicked) == (1, 1)
    assert not EmailEvent.objects.filter(lead=b, kind__in=["opened", "clicked"], is_machine=False, delivery__step__position=1).exists()


def test_stage_moves_are_the_ones_the_step_made_on_send_and_on_a_click(campaign):
    sequence, (a, *_) = campaign
    report = sequence_report(sequence=sequence)
    step1, step2 = report.rows

    assert report.stages == [("nurturing", "Nurturing"), ("mql", "MQL")]
    assert step1.stage_moves == {"nurturing": 4, "mql": 1}  # "step 12" is not step 1
    assert step1.moves == [4, 1]
    assert step2.stage_moves == {} and step2.moves == [0, 0]
    assert a.stage_changes.filter(to_status="mql").get().actor.startswith("sequence Welcome step 1, event #")


def test_the_total_adds_up_the_steps_and_the_sequence_line_counts_leads(campaign):
    sequence, _ = campaign
    report = sequence_report(sequence=sequence)
    total = report.total

    assert (total.sent, total.delivered, total.opened, total.opens, total.clicked, total.clicks) == (6, 1, 2, 3, 1, 1)
    assert (total.replied, total.unsubscribed, total.complained) == (1, 1, 1)
    assert (total.bounced, total.bounced_hard, total.bounced_soft) == (2, 1, 1)
    assert (total.machine_opens, total.machine_clicks) == (2, 1)
    assert total.open_rate == 33.3 and total.bounce_rate == 33.3
    assert total.stage_moves == {"nurturing": 4, "mql": 1}

    leads = report.leads
    assert (leads.emailed, leads.opened, leads.clicked, leads.replied, leads.engaged) == (4, 2, 1, 1, 3)
    assert leads.engagement_rate == 75.0


def test_an_email_waiting_to_go_again_after_a_soft_bounce_counts_as_sent_once():
    sequence = sequence_with_steps()
    step, now = sequence.steps.get(), timezone.now()
    rows = {
        "retrying": (Delivery.Status.SCHEDULED, now),  # what a soft bounce leaves: it left once
        "due": (Delivery.Status.SCHEDULED, None),
        "failed": (Delivery.Status.FAILED, None),
        "sent": (Delivery.Status.SENT, now),
    }
    for status, sent_at in rows.values():
        enrollment = Enrollment.objects.create(lead=LeadFactory(), sequence=sequence, status=Enrollment.Status.EXITED)
        Delivery.objects.create(enrollment=enrollment, step=step, status=status, due_at=now, sent_at=sent_at)

    assert sequence_report(sequence=sequence).rows[0].sent == 2


def test_a_call_task_step_stays_out_of_the_email_totals():
    sequence = sequence_with_steps({}, {"kind": Step.Kind.CALL_TASK})
    enrollment = Enrollment.objects.create(lead=LeadFactory(), sequence=sequence)
    now = timezone.now()
    for step in sequence.steps.all():
        Delivery.objects.create(enrollment=enrollment, step=step, status=Delivery.Status.SENT, due_at=now, sent_at=now)

    report = sequence_report(sequence=sequence)

    assert [row.sent for row in report.rows] == [1, 1]
    assert report.total.sent == 1 and report.leads.emailed == 1


def test_a_sequence_with_no_sends_reports_zeros_and_no_rates():
    report = sequence_report(sequence=sequence_with_steps({}, {}))
    assert [row.sent for row in report.rows] == [0, 0]
    assert report.total.open_rate is None and report.leads.engagement_rate is None


# --- Queries --------------------------------------------------------------------------------------


def build(*, steps: int, leads: int, name: str):
    """A sequence of `steps` sent to `leads` leads, each email opened, clicked by a scanner, and moving its lead."""
    sequence = sequence_with_steps(*({} for _ in range(steps)), name=name)
    now = timezone.now()
    for lead in (LeadFactory() for _ in range(leads)):
        enrollment = Enrollment.objects.create(lead=lead, sequence=sequence)
        for step in sequence.steps.all():
            delivery = Delivery.objects.create(
                enrollment=enrollment, step=step, status=Delivery.Status.SENT, due_at=now, sent_at=now, to_email=lead.email
            )
            for kind, is_machine in (("opened", False), ("clicked", True), ("delivered", False)):
                EmailEvent.objects.create(
                    delivery=delivery, lead=lead, kind=kind, is_machine=is_machine, provider="test", occurred_at=now,
                    dedupe_key=f"{delivery.pk}-{kind}",
                )
        last = sequence.steps.order_by("position").last()
        lead_services.lead_change_stage(
            lead=lead, to_status="nurturing", actor=f"sequence {name} step {steps}",
            source=Actor.sequence(sequence_id=sequence.pk, step_id=last.pk),
        )
    return sequence


def count_queries(call):
    with CaptureQueriesContext(connection) as queries:
        call()
    return len(queries)


def test_the_report_costs_the_same_few_queries_whatever_the_number_of_steps_and_leads():
    small = build(steps=2, leads=2, name="Small")
    large = build(steps=8, leads=12, name="Large")

    assert count_queries(lambda: sequence_report(sequence=small)) <= 5
    assert count_queries(lambda: sequence_report(sequence=small)) == count_queries(lambda: sequence_report(sequence=large))
    report = sequence_report(sequence=large)
    assert report.total.sent == 96 and report.total.opened == 96 and report.total.machine_clicks == 96
    assert report.rows[-1].stage_moves == {"nurturing": 12}


def test_the_report_page_costs_the_same_queries_at_two_sizes(client, marketer_user):
    client.force_login(marketer_user)
    small = build(steps=2, leads=2, name="Small")
    large = build(steps=8, leads=12, name="Large")
    url = lambda s: reverse("admin:nurturing_sequence_report", args=[s.pk])  # noqa: E731
    client.get(url(small))  # warm the session and content types

    assert count_queries(lambda: client.get(url(small))) == count_queries(lambda: client.get(url(large)))


# --- The pages ------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["marketer_user", "manager_user"])
def test_marketers_and_managers_read_the_report_with_its_legend(client, campaign, role, request):
    sequence, _ = campaign
    client.force_login(request.getfixturevalue(role))

    response = client.get(reverse("admin:nurturing_sequence_report", args=[sequence.pk]))

    assert response.status_code == 200
    page = response.content.decode()
    assert 'class="sequence-report"' in page and "Moved to MQL" in page and "How these are counted" in page
    assert '<td class="sent">4</td>' in page and '<td class="sent">6</td>' in page
    assert "25.0%" in page and "Engagement rate: <strong>75.0%</strong>" in page


def test_the_sequence_pages_link_to_the_report(client, manager_user):
    client.force_login(manager_user)
    sequence = sequence_with_steps()
    report_url = reverse("admin:nurturing_sequence_report", args=[sequence.pk])

    assert report_url in client.get(reverse("admin:nurturing_sequence_change", args=[sequence.pk])).content.decode()
    assert report_url in client.get(reverse("admin:nurturing_sequence_changelist")).content.decode()


def test_a_sales_rep_cannot_read_the_report(client, rep_user):
    # Reps may view sequences (for their leads' pages) but are not staff: the admin sends them to log in.
    client.force_login(rep_user)
    sequence = sequence_with_steps()
    response = client.get(reverse("admin:nurturing_sequence_report", args=[sequence.pk]))
    assert response.status_code == 302 and reverse("admin:login") in response["Location"]


def test_staff_without_the_right_to_view_sequences_get_403(client):
    client.force_login(UserFactory(is_staff=True))
    sequence = sequence_with_steps()
    assert client.get(reverse("admin:nurturing_sequence_report", args=[sequence.pk])).status_code == 403


def test_the_lead_page_shows_its_email_events_escaped(client, manager_user, campaign):
    _, (a, *_) = campaign
    delivery = Delivery.objects.get(enrollment__lead=a, step__position=1)
    with time_machine.travel(MONDAY_10_UTC + timedelta(hours=4), tick=False):
        record(delivery, "clicked", minutes=200, agent=PERSON, url='https://example.com/?q=<script>alert("x")</script>')
    client.force_login(manager_user)

    page = client.get(reverse("admin:leads_lead_change", args=[a.pk])).content.decode()

    assert 'class="lead-email-events"' in page
    assert "Welcome · step 1" in page and "Welcome · step 2" in page
    assert "machine: Apple Mail Privacy Protection prefetch" in page
    assert "https://example.com/pricing?plan=team" in page and "moved to MQL" in page
    assert "Complained (spam)" in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert '<script>alert("x")' not in page


def test_the_lead_page_costs_the_same_queries_with_one_event_or_thirty(client, manager_user):
    client.force_login(manager_user)
    few, many = build(steps=1, leads=1, name="Few"), build(steps=10, leads=1, name="Many")
    lead_of = lambda s: Enrollment.objects.get(sequence=s).lead  # noqa: E731
    few_lead, many_lead = lead_of(few), lead_of(many)
    assert EmailEvent.objects.filter(lead=many_lead).count() == 30
    url = lambda lead: reverse("admin:leads_lead_change", args=[lead.pk])  # noqa: E731
    client.get(url(few_lead))

    assert count_queries(lambda: client.get(url(few_lead))) == count_queries(lambda: client.get(url(many_lead)))


def test_renaming_a_sequence_keeps_its_per_step_report_and_its_leads_stage_history(campaign):
    sequence, (a, b, c, d) = campaign
    before = sequence_report(sequence=sequence)
    history = {lead.pk: list(lead.stage_changes.values_list("pk", "to_status", "actor")) for lead in (a, b, c, d)}
    assert any(row.stage_moves for row in before.rows)  # the fixture's clicks and sends moved leads

    sequence.name = "Welcome (2027 edition)"
    sequence.save(update_fields=["name"])
    after = sequence_report(sequence=Sequence.objects.get(pk=sequence.pk))

    assert [(row.step.pk, row.stage_moves, row.moves) for row in after.rows] == [
        (row.step.pk, row.stage_moves, row.moves) for row in before.rows
    ]
    assert after.stages == before.stages
    assert {lead.pk: list(lead.stage_changes.values_list("pk", "to_status", "actor")) for lead in (a, b, c, d)} == history
