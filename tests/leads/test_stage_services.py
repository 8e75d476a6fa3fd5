"""The stage-changing services in detail: what each refusal says and on which
field, the dates recorded after the fact, and who and what each move names.

test_pipeline.py covers every move and test_services.py the main paths; these
pin down the rest, given / when / then, each at a frozen time.
"""

from datetime import date, datetime, timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import ValidationError

from leads import services
from leads.models import Customer, Deal, Lead
from leads.pipeline import LeadStatus
from leads.signals import lead_stage_changed
from tests.factories import CompanyFactory, lead_at, manager, rep

pytestmark = pytest.mark.django_db

MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=dt_timezone.utc)


def at(*, days=0, hours=0, minutes=0, seconds=0):
    return MONDAY + timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def refusal(call, **kwargs):
    """The fields and messages of the ValidationError that `call(**kwargs)` raises."""
    with pytest.raises(ValidationError) as refused:
        call(**kwargs)
    return refused.value.message_dict


# --- Converting -----------------------------------------------------------------------


def test_converting_a_customer_again_is_refused_on_the_lead():
    with time_machine.travel(at(), tick=False):
        lead = lead_at(LeadStatus.CUSTOMER)

        assert refusal(services.lead_convert_to_customer, lead=lead, deal_value=10) == {
            "lead": ["This lead is already a customer."]
        }


def test_a_conversion_cannot_be_dated_before_the_lead_entered_its_stage():
    with time_machine.travel(at(), tick=False):
        lead = lead_at(LeadStatus.SQL)

    with time_machine.travel(at(days=1), tick=False):
        refused = refusal(services.lead_convert_to_customer, lead=lead, deal_value=10, at=at(hours=-1))

    assert refused == {"at": ["That time is before the lead entered its current stage (2026-03-02 09:00)."]}
    assert not Deal.objects.exists()
    assert not Customer.objects.exists()


def test_a_conversion_recorded_later_dates_the_won_deal_and_the_move_when_it_happened():
    with time_machine.travel(at(), tick=False):
        seller, boss = rep(username="seller"), manager(username="boss")
        lead = lead_at(LeadStatus.SQL, owner=seller)
    signed = at(days=2)

    with time_machine.travel(at(days=5), tick=False):
        deal = services.lead_convert_to_customer(
            lead=lead, deal_value="1200", currency="usd", expected_close_on=date(2026, 3, 31), by=boss, at=signed
        )

    deal.refresh_from_db()
    assert (deal.created_at, deal.closed_at, deal.owner, deal.expected_close_on) == (signed, signed, seller, date(2026, 3, 31))
    change = lead.stage_changes.first()
    assert (change.to_status, change.changed_at, change.changed_by, change.actor, change.reason) == (
        LeadStatus.CUSTOMER, signed, boss, "", f"Converted: deal #{deal.pk} won, 1,200 USD"
    )


def test_converting_wins_the_deal_opened_last_even_if_it_was_recorded_first():
    with time_machine.travel(at(), tick=False):
        lead = lead_at(LeadStatus.SQL)

    with time_machine.travel(at(days=3), tick=False):
        newest = services.deal_open(lead=lead, value=500, product="Team", at=at(days=2))
        older = services.deal_open(lead=lead, value=100, product="Starter", at=at(days=1))
        won = services.lead_convert_to_customer(lead=lead, deal_value=450)

    assert won.pk == newest.pk
    older.refresh_from_db()
    assert older.status == Deal.Status.OPEN


def test_of_deals_opened_at_the_same_moment_converting_wins_the_last_one_recorded():
    with time_machine.travel(at(), tick=False):
        lead = lead_at(LeadStatus.SQL)
        services.deal_open(lead=lead, value=100)
        second = services.deal_open(lead=lead, value=200)

        won = services.lead_convert_to_customer(lead=lead, deal_value=150)

    assert won.pk == second.pk


def test_a_company_becomes_a_customer_named_after_it_with_the_lead_as_first_contact():
    with time_machine.travel(at(), tick=False):
        lead = lead_at(LeadStatus.SQL, company=CompanyFactory(name="Acme Tools"))

    with time_machine.travel(at(days=1), tick=False):
        deal = services.lead_convert_to_customer(lead=lead, deal_value=10)

    customer = Customer.objects.get()
    assert (customer.name, customer.company, customer.primary_lead, customer.became_customer_at) == (
        "Acme Tools", lead.company, lead, at(days=1)
    )
    assert deal.customer == customer


def test_a_lead_without_a_company_becomes_its_own_customer_even_if_a_company_customer_names_it_first_contact():
    with time_machine.travel(at(), tick=False):
        lead = lead_at(LeadStatus.SQL, company=None, first_name="Solo", last_name="Trader")
        # As a manager can record it in the admin.
        recorded = Customer.objects.create(name="Acme Tools", company=CompanyFactory(name="Acme Tools"), primary_lead=lead)

        deal = services.lead_convert_to_customer(lead=lead, deal_value=10)

    assert deal.customer != recorded
    assert (deal.customer.name, deal.customer.company, deal.customer.primary_lead) == ("Solo Trader", None, lead)


# --- Opening and losing deals -------------------------------------------------------


def test_a_deal_opened_with_only_a_value_has_no_product_and_the_default_currency(settings):
    settings.CRM_DEFAULT_CURRENCY = "GBP"
    with time_machine.travel(at(), tick=False):
        deal = services.deal_open(lead=lead_at(LeadStatus.SQL), value=100)

    deal.refresh_from_db()
    assert (deal.product, deal.currency, deal.expected_close_on) == ("", "GBP", None)


def test_a_deal_keeps_the_currency_it_was_opened_in():
    with time_machine.travel(at(), tick=False):
        deal = services.deal_open(lead=lead_at(LeadStatus.SQL), value=100, currency="usd")

    deal.refresh_from_db()
    assert deal.currency == "USD"


def test_a_deal_with_a_negative_value_is_refused_on_the_value():
    with time_machine.travel(at(), tick=False):
        lead = lead_at(LeadStatus.SQL)

        assert refusal(services.deal_open, lead=lead, value=-5) == {"value": ["A deal value cannot be negative."]}

    assert not Deal.objects.exists()


@pytest.mark.parametrize("status", [LeadStatus.LOST, LeadStatus.DISQUALIFIED])
def test_an_ended_lead_gets_no_deal_until_it_is_reopened(status):
    with time_machine.travel(at(), tick=False):
        lead = lead_at(status)

        refused = refusal(services.deal_open, lead=lead, value=100)

    label = "lost" if status == LeadStatus.LOST else "disqualified"
    assert refused == {"lead": [f"The lead is {label}: reopen it before opening a deal."]}
    assert not Deal.objects.exists()
    lead.refresh_from_db()
    assert lead.status == status


def test_losing_a_deal_without_a_reason_is_refused_on_the_reason():
    with time_machine.travel(at(), tick=False):
        deal = services.deal_open(lead=lead_at(LeadStatus.SQL), value=100)

        assert refusal(services.deal_mark_lost, deal=deal, reason="  ") == {"lost_reason": ["Say why the deal was lost."]}


def test_a_deal_cannot_be_lost_twice():
    with time_machine.travel(at(), tick=False):
        deal = services.deal_open(lead=lead_at(LeadStatus.SQL), value=100)
        services.deal_mark_lost(deal=deal, reason="No budget")

        assert refusal(services.deal_mark_lost, deal=deal, reason="Again") == {"status": ["The deal is already lost."]}


def test_a_loss_recorded_later_is_dated_when_it_happened_and_not_before_the_deal_was_opened():
    with time_machine.travel(at(), tick=False):
        lead = lead_at(LeadStatus.SQL)

    with time_machine.travel(at(days=5), tick=False):
        deal = services.deal_open(lead=lead, value=100, at=at(days=1))
        too_early = refusal(services.deal_mark_lost, deal=deal, reason="No budget", at=at(hours=12))
        services.deal_mark_lost(deal=deal, reason="No budget", at=at(days=3))

    assert too_early == {"at": ["That time is before the deal was opened (2026-03-03 09:00)."]}
    deal.refresh_from_db()
    lead.refresh_from_db()
    assert deal.closed_at == at(days=3)
    assert (lead.status, lead.stage_entered_at) == (LeadStatus.LOST, at(days=3))


def test_a_conversion_cannot_be_dated_before_the_deal_it_wins_was_opened():
    with time_machine.travel(at(), tick=False):
        lead = lead_at(LeadStatus.SQL)
        services.deal_open(lead=lead, value=100)  # the lead is an opportunity from now

    with time_machine.travel(at(days=2), tick=False):
        services.deal_open(lead=lead, value=500)  # the deal a conversion wins: the latest

    with time_machine.travel(at(days=3), tick=False):
        refused = refusal(services.lead_convert_to_customer, lead=lead, deal_value=450, at=at(days=1))

    assert refused == {"at": ["That time is before the deal was opened (2026-03-04 09:00)."]}
    assert not Deal.objects.filter(status=Deal.Status.WON).exists()
    assert not Customer.objects.exists()


def test_a_conversion_made_now_after_a_deal_opened_a_little_ahead_closes_it_no_earlier():
    with time_machine.travel(at(), tick=False):
        lead = lead_at(LeadStatus.OPPORTUNITY)
        services.deal_open(lead=lead, value=100, at=at(minutes=3))
        won = services.lead_convert_to_customer(lead=lead, deal_value=100)

    assert (won.created_at, won.closed_at) == (at(minutes=3), at(minutes=3))


# --- Moving a lead ----------------------------------------------------------------------


def test_a_move_keeps_the_callers_lead_in_step_and_marks_the_lead_updated():
    with time_machine.travel(at(), tick=False):
        lead = lead_at(LeadStatus.NEW)

    with time_machine.travel(at(days=1), tick=False):
        change = services.lead_change_stage(lead=lead, to_status=LeadStatus.CONTACTED)

    # The caller's instance, not re-read.
    assert (lead.status, lead.stage_entered_at) == (LeadStatus.CONTACTED, at(days=1))
    assert (change.actor, change.reason, change.changed_by) == ("", "", None)
    lead.refresh_from_db()
    assert lead.updated_at == at(days=1)


def test_the_stage_signal_names_the_lead_and_its_history_row(django_capture_on_commit_callbacks):
    received = []

    def handler(sender, **kwargs):
        received.append((sender, kwargs["lead_id"], kwargs["stage_change_id"]))

    with time_machine.travel(at(), tick=False):
        lead = lead_at(LeadStatus.NEW)
    lead_stage_changed.connect(handler)
    try:
        with time_machine.travel(at(days=1), tick=False), django_capture_on_commit_callbacks(execute=True):
            change = services.lead_change_stage(lead=lead, to_status=LeadStatus.NURTURING)
    finally:
        lead_stage_changed.disconnect(handler)

    assert received == [(Lead, lead.pk, change.pk)]


@pytest.mark.parametrize(
    ("start", "to_status", "field", "message"),
    [
        (LeadStatus.NEW, "won", "to_status",
         "'won' is not a stage. Allowed moves from New: Contacted, Nurturing, MQL, SQL, Opportunity, Customer, Lost, Disqualified."),
        (LeadStatus.MQL, LeadStatus.MQL, "to_status",
         "The lead is already MQL. Allowed moves from MQL: SQL, Opportunity, Customer, Nurturing, Lost, Disqualified."),
        (LeadStatus.LOST, LeadStatus.SQL, "to_status",
         "A lead cannot move from Lost to SQL. Allowed moves from Lost: Contacted, Nurturing."),
        (LeadStatus.SQL, LeadStatus.CUSTOMER, "to_status",
         "A lead becomes a customer by converting it, which records the won deal and its value."),
        (LeadStatus.SQL, LeadStatus.DISQUALIFIED, "reason", "Say why the lead is disqualified: a reason is required."),
    ],
    ids=["unknown", "same", "forbidden", "customer", "no-reason"],
)
def test_a_refused_move_says_why_on_the_field_to_correct(start, to_status, field, message):
    with time_machine.travel(at(), tick=False):
        lead = lead_at(start)

        assert refusal(services.lead_change_stage, lead=lead, to_status=to_status) == {field: [message]}


def test_a_clock_up_to_five_minutes_fast_is_tolerated_but_no_more():
    with time_machine.travel(at(), tick=False):
        lead = lead_at(LeadStatus.NEW)
        future = refusal(services.lead_change_stage, lead=lead, to_status=LeadStatus.CONTACTED,
                         at=at(minutes=5, seconds=1))
        change = services.lead_change_stage(lead=lead, to_status=LeadStatus.CONTACTED, at=at(minutes=5))

    assert future == {"at": ["That time is in the future: record what has happened, with a time up to now."]}
    assert change.changed_at == at(minutes=5)


def test_a_move_made_now_after_one_dated_a_little_ahead_is_dated_with_it_never_before():
    with time_machine.travel(at(), tick=False):
        lead = lead_at(LeadStatus.NEW)
        services.lead_change_stage(lead=lead, to_status=LeadStatus.CONTACTED, at=at(minutes=4))
        change = services.lead_change_stage(lead=lead, to_status=LeadStatus.NURTURING)

    assert (change.changed_at, change.time_in_from_stage) == (at(minutes=4), timedelta(0))


def test_a_deal_opened_now_on_a_lead_created_a_little_ahead_is_opened_with_its_move():
    with time_machine.travel(at(), tick=False):
        lead = services.lead_create(email="ahead@example.org", created_at=at(minutes=1))
        deal = services.deal_open(lead=lead, value=100)

    lead.refresh_from_db()
    assert (lead.status, lead.stage_entered_at, deal.created_at) == (LeadStatus.OPPORTUNITY, at(minutes=1), at(minutes=1))


def test_a_time_before_what_it_must_follow_is_refused_naming_it():
    with time_machine.travel(at(), tick=False):
        refused = refusal(services._when, at=at(hours=-2), not_before=at(hours=-1))

    assert refused == {"at": ["That time is before what it follows (2026-03-02 08:00)."]}


# --- Amounts and currencies ---------------------------------------------------------------


@pytest.mark.parametrize("value", [0, "0.50", "1.99", "9999999999.99"])
def test_any_amount_from_zero_to_the_limit_with_cents_is_a_deal_value(value):
    with time_machine.travel(at(), tick=False):
        deal = services.deal_open(lead=lead_at(LeadStatus.SQL), value=value)

    deal.refresh_from_db()
    assert deal.value == Decimal(str(value))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "Enter the deal value (0 or more)."),
        ("NaN", "Write the amount in digits, e.g. 1000 or 1000.50."),
        ("Infinity", "Write the amount in digits, e.g. 1000 or 1000.50."),
        ("1e3", "Write the amount in digits, e.g. 1000 or 1000.50."),
        (Decimal("1E+3"), "Write the amount in digits, e.g. 1000 or 1000.50."),
        ("1,000", "Write the amount in digits, e.g. 1000 or 1000.50."),
        (True, "Write the amount in digits, e.g. 1000 or 1000.50."),
        ("-0.01", "A deal value cannot be negative."),
        ("1.005", "Use at most two decimal places."),
        ("10000000000", "That amount is too large: at most 9,999,999,999.99."),
    ],
)
def test_a_deal_value_that_is_not_an_amount_of_money_is_refused_saying_why(value, message):
    with time_machine.travel(at(), tick=False):
        lead = lead_at(LeadStatus.SQL)

        assert refusal(services.lead_convert_to_customer, lead=lead, deal_value=value) == {"deal_value": [message]}


@pytest.mark.parametrize("typed", ["1e3", Decimal("1E+3"), "NaN", "Infinity"])
def test_every_deal_service_refuses_an_amount_not_written_in_digits(typed):
    digits = ["Write the amount in digits, e.g. 1000 or 1000.50."]
    with time_machine.travel(at(), tick=False):
        lead = lead_at(LeadStatus.SQL)
        deal = services.deal_open(lead=lead, value="100")

        assert refusal(services.deal_open, lead=lead, value=typed) == {"value": digits}
        assert refusal(services.deal_update, deal=deal, value=typed) == {"value": digits}
        assert refusal(services.lead_convert_to_customer, lead=lead, deal_value=typed) == {"deal_value": digits}

    deal.refresh_from_db()
    assert (Deal.objects.count(), deal.value, deal.status) == (1, Decimal("100.00"), Deal.Status.OPEN)


def test_the_stage_history_writes_amounts_with_separators_and_the_currency():
    with time_machine.travel(at(), tick=False):
        lead = lead_at(LeadStatus.SQL)
        services.deal_open(lead=lead, value="1000", product="Pro")
        deal = services.lead_convert_to_customer(lead=lead, deal_value="12500.50")

    reasons = list(lead.stage_changes.order_by("changed_at", "pk").values_list("reason", flat=True))[-2:]
    assert reasons == ["Deal opened: Pro: 1,000 EUR (Open)", f"Converted: deal #{deal.pk} won, 12,500.50 EUR"]


def test_history_written_with_an_amount_in_scientific_notation_is_rewritten_in_digits():
    from importlib import import_module

    from django.apps import apps

    with time_machine.travel(at(), tick=False):
        lead = lead_at(LeadStatus.SQL)
    rows = {
        "Converted: deal #12 won, 1E+3 EUR": "Converted: deal #12 won, 1,000 EUR",
        "Deal opened: Pro: 1.25E+4 USD (Open)": "Deal opened: Pro: 12,500 USD (Open)",
        "Converted: deal #13 won, 4000 EUR": "Converted: deal #13 won, 4000 EUR",
        "Budget of 1E+3 EUR confirmed": "Budget of 1E+3 EUR confirmed",  # a person's words stay theirs
    }
    changes = {old: lead.stage_changes.create(from_status="sql", to_status="sql", changed_at=at(), reason=old) for old in rows}

    import_module("leads.migrations.0031_stage_history_amounts_in_digits").rewrite(apps, None)

    assert {old: change.__class__.objects.get(pk=change.pk).reason for old, change in changes.items()} == rows


def test_a_currency_that_is_not_three_letters_is_refused_saying_what_to_enter():
    with time_machine.travel(at(), tick=False):
        lead = lead_at(LeadStatus.SQL)

        assert refusal(services.deal_open, lead=lead, value=10, currency="EU1") == {
            "currency": ["Use a three-letter ISO 4217 currency code, such as EUR or USD."]
        }


# --- Who a deal and its moves belong to ------------------------------------------------


def test_a_deal_belongs_to_the_leads_owner_and_its_move_to_whoever_opened_it():
    with time_machine.travel(at(), tick=False):
        seller, boss = rep(username="seller"), manager(username="boss")
        lead = lead_at(LeadStatus.SQL, owner=seller)

    with time_machine.travel(at(days=1), tick=False):
        deal = services.deal_open(lead=lead, value=100, expected_close_on=date(2026, 4, 30), by=boss)

    deal.refresh_from_db()
    assert (deal.owner, deal.expected_close_on) == (seller, date(2026, 4, 30))
    change = lead.stage_changes.first()
    assert (change.to_status, change.changed_by, change.actor) == (LeadStatus.OPPORTUNITY, boss, "")


def test_a_deal_on_an_unassigned_lead_belongs_to_whoever_opened_it():
    with time_machine.travel(at(), tick=False):
        boss = manager(username="boss")
        lead = lead_at(LeadStatus.SQL, owner=None)

        deal = services.deal_open(lead=lead, value=100, by=boss)

    deal.refresh_from_db()
    assert deal.owner == boss


def test_losing_the_last_deal_records_who_lost_it():
    with time_machine.travel(at(), tick=False):
        boss = manager(username="boss")
        lead = lead_at(LeadStatus.SQL)
        deal = services.deal_open(lead=lead, value=100)

        services.deal_mark_lost(deal=deal, reason="No budget", by=boss)

    change = lead.stage_changes.first()
    assert (change.to_status, change.changed_by, change.actor, change.reason) == (
        LeadStatus.LOST, boss, "", "Deal lost: No budget"
    )


# --- An automation's move: forward when the pipeline allows it, else nothing ------------------------


def test_an_automations_move_is_made_only_when_the_pipeline_allows_it_from_the_stage_under_the_lock():
    from core.events import Actor

    source = Actor.sequence(sequence_id=5, step_id=8)
    with time_machine.travel(MONDAY, tick=False):
        lead = lead_at(LeadStatus.NURTURING)
        change = services.lead_stage_action(lead=lead, to_status=LeadStatus.MQL, actor="sequence A step 1", reason="sent",
                                            source=source)
        assert (change.from_status, change.to_status, change.source_sequence_id) == (LeadStatus.NURTURING, LeadStatus.MQL, 5)

        # Already there: nothing. Behind the lead (SQL to MQL is a move back): nothing.
        assert services.lead_stage_action(lead=lead, to_status=LeadStatus.MQL, actor="x", reason="x", source=source) is None
        stale = Lead.objects.get(pk=lead.pk)  # read while the lead was MQL...
        services.lead_change_stage(lead=lead, to_status=LeadStatus.SQL)  # ...then moved on by someone else
        assert services.lead_stage_action(lead=stale, to_status=LeadStatus.MQL, actor="x", reason="x", source=source) is None
        assert stale.status == LeadStatus.SQL  # the lock read the stage it is at

        # A move the pipeline allows but only a conversion makes is refused with the reason.
        with pytest.raises(ValidationError, match="converting it"):
            services.lead_stage_action(lead=lead, to_status=LeadStatus.CUSTOMER, actor="x", reason="x", source=source)
    assert list(lead.stage_changes.values_list("to_status", flat=True).order_by("changed_at", "id"))[-2:] == [
        LeadStatus.MQL, LeadStatus.SQL,
    ]
