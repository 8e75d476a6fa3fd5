"""The lead services: what they guarantee, given / when / then."""

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from leads import pipeline, services
from leads.models import Activity, Customer, Deal, Lead, Objection, StageChange, Task
from leads.pipeline import LeadStatus
from leads.signals import lead_stage_changed
from tests.factories import CompanyFactory, LeadFactory, lead_at, marketer

pytestmark = pytest.mark.django_db


# --- Creating and editing leads ------------------------------------------------


@time_machine.travel("2026-06-01 09:00Z", tick=False)
def test_only_a_manager_creates_a_lead_for_someone_else_and_only_for_who_can_own_leads(rep_user, other_rep,
                                                                                      manager_user, marketer_user):
    with pytest.raises(PermissionDenied):
        services.lead_create(by=rep_user, email="a@example.org", owner=other_rep)
    assert services.lead_create(by=rep_user, email="b@example.org", owner=rep_user).owner == rep_user
    assert services.lead_create(by=manager_user, email="c@example.org", owner=other_rep).owner == other_rep
    with pytest.raises(ValidationError) as caught:
        services.lead_create(by=manager_user, email="d@example.org", owner=marketer_user)
    assert "owner" in caught.value.message_dict
    assert sorted(Lead.objects.values_list("email", flat=True)) == ["b@example.org", "c@example.org"]


def test_a_new_lead_starts_new_with_its_first_stage_change(rep_user):
    lead = services.lead_create(by=rep_user, first_name="Ada", last_name="Byron", email="  Ada@Example.COM ")

    assert lead.status == LeadStatus.NEW
    assert lead.email == "ada@example.com"
    change = lead.stage_changes.get()
    assert (change.from_status, change.to_status, change.changed_by) == ("", LeadStatus.NEW, rep_user)


def test_a_duplicate_email_in_any_letter_case_is_refused_and_nothing_is_written():
    first = LeadFactory(email="sam@example.com")

    with pytest.raises(ValidationError) as exc:
        services.lead_create(first_name="Other", email="SAM@Example.com")

    assert "already has this email" in exc.value.message_dict["email"][0]
    assert f"#{first.pk}" in exc.value.message_dict["email"][0]
    assert Lead.objects.count() == 1
    assert StageChange.objects.count() == 1


def test_the_database_refuses_a_duplicate_email_even_past_the_service():
    LeadFactory(email="race@example.com")
    lead = Lead(first_name="Racer", email="RACE@example.com")
    with pytest.raises(ValidationError):
        services._lead_save(lead)


def test_an_archived_lead_frees_its_email_for_a_new_lead():
    old = LeadFactory(email="back@example.com")
    services.lead_archive(leads=[old])

    again = services.lead_create(first_name="Back", email="back@example.com")

    assert again.pk != old.pk


def test_an_invalid_email_is_refused_with_a_field_error():
    with pytest.raises(ValidationError) as exc:
        services.lead_create(first_name="X", email="not-an-email")
    assert "email" in exc.value.message_dict
    assert not Lead.objects.exists()


def test_a_lead_needs_an_email_or_a_phone():
    with pytest.raises(ValidationError, match="email address or a phone number"):
        services.lead_create(first_name="Nobody")
    lead = services.lead_create(first_name="Caller", phone="+33 1 23 45 67 89")
    assert lead.email == ""


def test_an_unknown_time_zone_is_refused():
    with pytest.raises(ValidationError) as exc:
        services.lead_create(email="tz@example.com", timezone="Mars/Olympus")
    assert "time zone" in exc.value.message_dict["timezone"][0]


def test_search_text_follows_the_lead_and_its_company():
    company = CompanyFactory(name="Initech")
    lead = LeadFactory(first_name="Peter", last_name="Gibbons", email="peter@initech.example", company=company)
    assert lead.search_text == "peter gibbons peter@initech.example initech"

    services.company_update(company=company, name="Initrode")

    lead.refresh_from_db()
    assert lead.search_text.endswith("initrode")


def test_updating_a_lead_never_touches_its_stage():
    lead = lead_at(LeadStatus.MQL)
    stale = Lead.objects.get(pk=lead.pk)
    services.lead_change_stage(lead=lead, to_status=LeadStatus.SQL)

    services.lead_update(lead=stale, title="CTO")

    stale.refresh_from_db()
    assert (stale.title, stale.status) == ("CTO", LeadStatus.SQL)
    with pytest.raises(TypeError):
        services.lead_update(lead=stale, status=LeadStatus.NEW)


# --- Stage moves ------------------------------------------------------------------


def test_a_stage_change_records_the_time_spent_in_the_stage_left():
    with time_machine.travel("2026-03-02 09:00Z", tick=False):
        lead = LeadFactory()
    with time_machine.travel("2026-03-05 12:00Z", tick=False):
        change = services.lead_change_stage(lead=lead, to_status=LeadStatus.CONTACTED)

    assert change.time_in_from_stage == timedelta(days=3, hours=3)
    lead.refresh_from_db()
    assert lead.stage_entered_at == change.changed_at


def test_lost_and_disqualified_need_a_reason():
    lead = lead_at(LeadStatus.SQL)
    for status in (LeadStatus.LOST, LeadStatus.DISQUALIFIED):
        with pytest.raises(ValidationError) as exc:
            services.lead_change_stage(lead=lead, to_status=status, reason="  ")
        assert "reason" in exc.value.message_dict

    services.lead_change_stage(lead=lead, to_status=LeadStatus.LOST, reason="Chose a competitor")
    lead.refresh_from_db()
    assert lead.lost_reason == "Chose a competitor"


def test_reopening_a_lost_lead_is_recorded_and_clears_the_lost_reason():
    lead = lead_at(LeadStatus.LOST)

    services.lead_change_stage(lead=lead, to_status=LeadStatus.NURTURING, reason="Budget freed up")

    lead.refresh_from_db()
    assert lead.status == LeadStatus.NURTURING
    assert lead.lost_reason == ""
    last = lead.stage_changes.first()
    assert (last.from_status, last.to_status, last.reason) == (LeadStatus.LOST, LeadStatus.NURTURING, "Budget freed up")


def test_an_automated_move_names_what_moved_it():
    lead = LeadFactory()
    change = services.lead_change_stage(lead=lead, to_status=LeadStatus.NURTURING, actor="sequence Welcome step 2")
    assert change.changed_by is None
    assert change.changed_by_label == "sequence Welcome step 2"


def test_the_stage_signal_is_sent_only_after_commit(django_capture_on_commit_callbacks):
    received = []

    def handler(sender, **kwargs):
        received.append((kwargs["from_status"], kwargs["to_status"]))

    lead_stage_changed.connect(handler)
    try:
        lead = LeadFactory()
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            services.lead_change_stage(lead=lead, to_status=LeadStatus.CONTACTED)
        assert received == []
        for callback in callbacks:
            callback()
        assert received == [(LeadStatus.NEW, LeadStatus.CONTACTED)]
    finally:
        lead_stage_changed.disconnect(handler)


def test_a_receiver_that_fails_after_the_move_committed_is_logged_and_the_others_still_run(
    django_capture_on_commit_callbacks, caplog
):
    received = []

    def broken(sender, **kwargs):
        raise RuntimeError("the report cache is down")

    def recording(sender, **kwargs):
        received.append(kwargs["to_status"])

    lead_stage_changed.connect(broken)
    lead_stage_changed.connect(recording)
    try:
        lead = LeadFactory()
        with django_capture_on_commit_callbacks(execute=True):
            change = services.lead_change_stage(lead=lead, to_status=LeadStatus.CONTACTED)
    finally:
        lead_stage_changed.disconnect(broken)
        lead_stage_changed.disconnect(recording)

    assert Lead.objects.get(pk=lead.pk).status == LeadStatus.CONTACTED and change.to_status == LeadStatus.CONTACTED
    assert received == [LeadStatus.CONTACTED]
    [record] = [r for r in caplog.records if r.name == "leads.signals"]
    assert record.levelname == "ERROR" and record.exc_info[1].args == ("the report cache is down",)
    assert record.getMessage() == (
        "lead_stage_changed: the receiver tests.leads.test_services."
        "test_a_receiver_that_fails_after_the_move_committed_is_logged_and_the_others_still_run.<locals>.broken "
        f"failed after the change committed (lead_id={lead.pk}, from_status=new, to_status=contacted, "
        f"stage_change_id={change.pk})"
    )


def test_a_stale_instance_is_checked_against_the_stored_status():
    lead = lead_at(LeadStatus.SQL)
    stale = Lead.objects.get(pk=lead.pk)
    services.lead_change_stage(lead=lead, to_status=LeadStatus.LOST, reason="No budget")

    # The stale copy still says SQL, but the lead is lost now: SQL -> Opportunity is not allowed from Lost.
    with pytest.raises(ValidationError, match="from Lost"):
        services.lead_change_stage(lead=stale, to_status=LeadStatus.OPPORTUNITY)


# --- Converting and deals --------------------------------------------------------


def test_converting_creates_the_customer_and_a_won_deal(rep_user):
    lead = lead_at(LeadStatus.SQL, owner=rep_user)

    deal = services.lead_convert_to_customer(lead=lead, deal_value="1200.50", product="Pro plan", by=rep_user)

    lead.refresh_from_db()
    assert lead.status == LeadStatus.CUSTOMER
    assert (deal.status, deal.value, deal.currency, deal.product) == (Deal.Status.WON, Decimal("1200.50"), "EUR", "Pro plan")
    assert deal.customer.company == lead.company
    assert deal.closed_at is not None
    assert lead.stage_changes.first().to_status == LeadStatus.CUSTOMER


def test_converting_wins_the_open_deal_and_keeps_its_creation_date_for_time_to_close(rep_user):
    with time_machine.travel("2026-01-10 10:00Z", tick=False):
        lead = lead_at(LeadStatus.SQL, owner=rep_user)
        opened = services.deal_open(lead=lead, value=5000, product="Team plan", by=rep_user)
    with time_machine.travel("2026-02-09 10:00Z", tick=False):
        won = services.lead_convert_to_customer(lead=lead, deal_value=4500, by=rep_user)

    assert won.pk == opened.pk
    assert won.value == Decimal("4500")
    assert won.product == "Team plan"
    assert won.time_to_close == timedelta(days=30)
    assert Deal.objects.filter(lead=lead).count() == 1


def test_a_second_lead_of_a_customer_company_links_to_the_same_customer():
    company = CompanyFactory()
    first = lead_at(LeadStatus.SQL, company=company)
    second = lead_at(LeadStatus.SQL, company=company)

    services.lead_convert_to_customer(lead=first, deal_value=100)
    services.lead_convert_to_customer(lead=second, deal_value=200)

    assert Customer.objects.count() == 1
    assert Customer.objects.get().deals.count() == 2


def test_a_lead_without_a_company_becomes_a_person_customer():
    lead = lead_at(LeadStatus.OPPORTUNITY, company=None, first_name="Solo", last_name="Trader")
    deal = services.lead_convert_to_customer(lead=lead, deal_value=99)
    assert deal.customer.company is None
    assert deal.customer.primary_lead == lead
    assert deal.customer.name == "Solo Trader"


@pytest.mark.parametrize(
    ("value", "message"),
    [(None, "Enter the deal value"), ("", "Enter the deal value"), (-1, "cannot be negative"), ("ten", "Write the amount in digits, e.g. 1000 or 1000.50.")],
)
def test_a_missing_or_negative_deal_value_converts_nothing(value, message):
    lead = lead_at(LeadStatus.SQL)
    changes = lead.stage_changes.count()

    with pytest.raises(ValidationError) as exc:
        services.lead_convert_to_customer(lead=lead, deal_value=value)

    assert message in exc.value.message_dict["deal_value"][0]
    lead.refresh_from_db()
    assert lead.status == LeadStatus.SQL
    assert lead.stage_changes.count() == changes
    assert not Deal.objects.exists()
    assert not Customer.objects.exists()


def test_converting_a_customer_again_is_refused():
    lead = lead_at(LeadStatus.CUSTOMER)
    with pytest.raises(ValidationError, match="already a customer"):
        services.lead_convert_to_customer(lead=lead, deal_value=10)
    assert Deal.objects.filter(lead=lead).count() == 1


def test_a_lost_lead_cannot_be_converted_until_reopened():
    lead = lead_at(LeadStatus.LOST)
    with pytest.raises(ValidationError, match="Allowed moves from Lost"):
        services.lead_convert_to_customer(lead=lead, deal_value=10)
    assert not Customer.objects.exists()


def test_an_invalid_currency_is_refused():
    lead = lead_at(LeadStatus.SQL)
    with pytest.raises(ValidationError) as exc:
        services.lead_convert_to_customer(lead=lead, deal_value=10, currency="euro")
    assert "currency" in exc.value.message_dict
    assert not Deal.objects.exists()


def test_opening_a_deal_moves_a_qualified_lead_to_opportunity():
    lead = lead_at(LeadStatus.SQL)
    deal = services.deal_open(lead=lead, value=800)
    lead.refresh_from_db()
    assert lead.status == LeadStatus.OPPORTUNITY
    assert deal.status == Deal.Status.OPEN
    assert lead.stage_changes.first().reason.startswith("Deal opened")


def test_a_customer_can_get_another_deal_without_changing_stage():
    lead = lead_at(LeadStatus.CUSTOMER)
    services.deal_open(lead=lead, value=300, product="Add-on")
    lead.refresh_from_db()
    assert lead.status == LeadStatus.CUSTOMER
    assert lead.deals.filter(status=Deal.Status.OPEN).count() == 1


def test_losing_the_last_open_deal_loses_the_lead_with_the_reason():
    lead = lead_at(LeadStatus.SQL)
    deal = services.deal_open(lead=lead, value=800)

    services.deal_mark_lost(deal=deal, reason="Went with a competitor")

    lead.refresh_from_db()
    deal.refresh_from_db()
    assert (deal.status, deal.lost_reason) == (Deal.Status.LOST, "Went with a competitor")
    assert lead.status == LeadStatus.LOST
    assert "Went with a competitor" in lead.lost_reason


def test_losing_one_of_two_open_deals_keeps_the_lead_an_opportunity():
    lead = lead_at(LeadStatus.SQL)
    first = services.deal_open(lead=lead, value=100)
    services.deal_open(lead=lead, value=200)
    services.deal_mark_lost(deal=first, reason="Too small")
    lead.refresh_from_db()
    assert lead.status == LeadStatus.OPPORTUNITY


def test_a_deal_needs_a_reason_to_be_lost_and_can_be_lost_once():
    deal = services.deal_open(lead=lead_at(LeadStatus.SQL), value=100)
    with pytest.raises(ValidationError):
        services.deal_mark_lost(deal=deal, reason="")
    services.deal_mark_lost(deal=deal, reason="No budget")
    with pytest.raises(ValidationError, match="already lost"):
        services.deal_mark_lost(deal=deal, reason="Again")


# --- Activities, objections, tasks ---------------------------------------------


def test_the_first_call_to_a_new_lead_touches_it_and_moves_it_to_contacted(rep_user):
    lead = LeadFactory(owner=rep_user)

    call = services.activity_log_call(
        lead=lead, by=rep_user, direction="outbound", outcome="no_answer", duration_seconds=0
    )

    lead.refresh_from_db()
    assert lead.status == LeadStatus.CONTACTED
    assert lead.last_touch_at == call.occurred_at
    assert lead.stage_changes.first().reason == "First call logged"


def test_a_call_to_a_lead_further_down_the_pipeline_does_not_move_it(rep_user):
    lead = lead_at(LeadStatus.SQL, owner=rep_user)
    services.activity_log_call(lead=lead, by=rep_user, direction="inbound", outcome="connected")
    lead.refresh_from_db()
    assert lead.status == LeadStatus.SQL


def test_a_note_is_not_a_touch(rep_user):
    lead = LeadFactory(owner=rep_user)
    services.activity_add_note(lead=lead, by=rep_user, body="Prefers email")
    lead.refresh_from_db()
    assert lead.last_touch_at is None


def test_last_touch_keeps_the_latest_touch_when_an_older_call_is_logged(rep_user):
    lead = LeadFactory(owner=rep_user)
    recent = timezone.now() - timedelta(hours=1)
    services.activity_log_meeting(lead=lead, by=rep_user, occurred_at=recent)
    services.activity_log_call(
        lead=lead, by=rep_user, direction="outbound", outcome="connected", occurred_at=recent - timedelta(days=3)
    )
    lead.refresh_from_db()
    assert lead.last_touch_at == recent


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"direction": "outbound", "outcome": ""}, "outcome"),
        ({"direction": "", "outcome": "connected"}, "direction"),
        ({"direction": "outbound", "outcome": "connected", "duration_seconds": -5}, "duration_seconds"),
        ({"direction": "sideways", "outcome": "connected"}, "direction"),
    ],
)
def test_a_bad_call_is_refused_and_nothing_is_logged(rep_user, kwargs, field):
    lead = LeadFactory(owner=rep_user)
    with pytest.raises(ValidationError) as exc:
        services.activity_log_call(lead=lead, by=rep_user, **kwargs)
    assert field in exc.value.message_dict
    assert not Activity.objects.exists()
    lead.refresh_from_db()
    assert (lead.status, lead.last_touch_at) == (LeadStatus.NEW, None)


def test_an_empty_note_is_refused(rep_user):
    with pytest.raises(ValidationError):
        services.activity_add_note(lead=LeadFactory(), by=rep_user, body="   ")


def test_an_objection_is_logged_in_the_leads_words_and_can_be_resolved(rep_user):
    lead = LeadFactory(owner=rep_user)
    objection = services.objection_log(
        lead=lead, by=rep_user, category=Objection.Category.PRICE, lead_words="Too expensive for us this year"
    )
    assert not objection.is_resolved

    with pytest.raises(ValidationError):
        services.objection_resolve(objection=objection)
    services.objection_resolve(objection=objection, response="Showed the annual discount")

    objection.refresh_from_db()
    assert objection.is_resolved and objection.resolved_at is not None


def test_an_objection_keeps_the_stage_the_lead_was_in_when_it_was_raised(rep_user):
    start = timezone.now() - timedelta(days=10)
    lead = LeadFactory(owner=rep_user, created_at=start)
    services.lead_change_stage(lead=lead, to_status="nurturing", by=rep_user, at=start + timedelta(days=1))
    services.lead_change_stage(lead=lead, to_status="mql", by=rep_user, at=start + timedelta(days=3))
    now = services.objection_log(lead=lead, by=rep_user, category="price", lead_words="Too dear")
    services.lead_change_stage(lead=lead, to_status="sql", by=rep_user)
    # Logged after the fact: the stage the history gives for that moment, and none before the lead's history.
    earlier = services.objection_log(lead=lead, by=rep_user, category="timing", lead_words="Next quarter",
                                     at=start + timedelta(days=2))
    before_history = services.objection_log(lead=lead, by=rep_user, category="need", lead_words="Not now",
                                            at=start - timedelta(days=1))

    stages = dict(Objection.objects.values_list("pk", "stage"))
    assert stages == {now.pk: LeadStatus.MQL, earlier.pk: LeadStatus.NURTURING, before_history.pk: ""}


def test_an_objection_needs_a_known_category_and_the_leads_words(rep_user):
    lead = LeadFactory(owner=rep_user)
    with pytest.raises(ValidationError) as exc:
        services.objection_log(lead=lead, by=rep_user, category="weather", lead_words="")
    assert {"category", "lead_words"} <= set(exc.value.message_dict)
    assert not Objection.objects.exists()


def test_an_objection_cannot_point_at_another_leads_call(rep_user):
    other_call = services.activity_log_call(lead=LeadFactory(owner=rep_user), by=rep_user, direction="outbound", outcome="connected")
    with pytest.raises(ValidationError, match="another lead"):
        services.objection_log(
            lead=LeadFactory(owner=rep_user), by=rep_user, category="price", lead_words="Too dear", activity=other_call
        )


def test_a_task_due_in_the_past_is_refused(rep_user):
    with pytest.raises(ValidationError) as exc:
        services.task_create(assignee=rep_user, title="Call back", due_at=timezone.now() - timedelta(minutes=5))
    assert "past" in exc.value.message_dict["due_at"][0]
    assert not Task.objects.exists()


def test_completing_a_task_twice_keeps_the_first_time(rep_user):
    task = services.task_create(assignee=rep_user, title="Send case study", due_at=timezone.now() + timedelta(days=1))
    first = services.task_complete(task=task).completed_at
    again = services.task_complete(task=Task.objects.get(pk=task.pk)).completed_at
    assert first == again


# --- Owners -----------------------------------------------------------------------


def test_assigning_an_owner_changes_only_leads_they_do_not_own(rep_user, other_rep):
    mine = LeadFactory(owner=rep_user)
    theirs = LeadFactory(owner=other_rep)

    changed = services.lead_assign_owner(leads=Lead.objects.filter(pk__in=[mine.pk, theirs.pk]), owner=rep_user)

    assert changed == 1
    assert set(Lead.objects.values_list("owner", flat=True)) == {rep_user.pk}


def test_a_marketer_cannot_own_leads():
    with pytest.raises(ValidationError, match="cannot own leads"):
        services.lead_assign_owner(leads=[LeadFactory()], owner=marketer())


def test_leads_can_go_back_to_the_unassigned_pool(rep_user):
    lead = LeadFactory(owner=rep_user)
    assert services.lead_assign_owner(leads=[lead], owner=None) == 1
    lead.refresh_from_db()
    assert lead.owner is None


# --- Recording history after the fact ----------------------------------------------


def test_nothing_can_be_dated_in_the_future(rep_user):
    later = timezone.now() + timedelta(days=1)
    with pytest.raises(ValidationError) as exc:
        services.lead_create(email="future@example.com", created_at=later)
    assert "future" in exc.value.message_dict["created_at"][0]
    lead = LeadFactory(owner=rep_user)
    with pytest.raises(ValidationError):
        services.activity_log_call(lead=lead, by=rep_user, direction="outbound", outcome="connected", occurred_at=later)
    with pytest.raises(ValidationError):
        services.lead_change_stage(lead=lead, to_status=LeadStatus.CONTACTED, at=later)
    lead.refresh_from_db()
    assert lead.status == LeadStatus.NEW and not lead.activities.exists()


def test_a_move_cannot_be_dated_before_the_lead_entered_its_stage():
    lead = LeadFactory()
    with pytest.raises(ValidationError, match="before the lead entered its current stage"):
        services.lead_change_stage(lead=lead, to_status=LeadStatus.CONTACTED, at=lead.created_at - timedelta(hours=1))


def test_a_call_logged_late_dates_the_first_contact_when_the_call_happened(rep_user):
    with time_machine.travel("2026-05-04 09:00Z", tick=False):
        lead = LeadFactory(owner=rep_user)
    with time_machine.travel("2026-05-06 18:00Z", tick=False):
        call = services.activity_log_call(
            lead=lead, by=rep_user, direction="outbound", outcome="connected",
            occurred_at=timezone.now() - timedelta(days=1),
        )
    change = lead.stage_changes.first()
    assert change.changed_at == call.occurred_at
    assert change.time_in_from_stage == timedelta(days=1, hours=9)


def test_a_history_can_be_recorded_with_its_own_dates():
    with time_machine.travel("2026-06-01 12:00Z", tick=False):
        lead = lead_at(LeadStatus.SQL)
        start = timezone.now()
    with time_machine.travel("2026-07-01 12:00Z", tick=False):  # recorded afterwards
        opened = services.deal_open(lead=lead, value=100, at=start + timedelta(days=1))
        won = services.lead_convert_to_customer(lead=lead, deal_value=120, at=start + timedelta(days=15))
    assert won.pk == opened.pk
    assert won.time_to_close == timedelta(days=14)


def test_losing_a_deal_updates_the_callers_objects():
    lead = lead_at(LeadStatus.SQL)
    deal = services.deal_open(lead=lead, value=100)
    services.deal_mark_lost(deal=deal, reason="Gone quiet")
    assert deal.status == Deal.Status.LOST
    assert deal.lead.status == LeadStatus.LOST


# --- Claiming, snoozing, a call's next step ------------------------------------------------------


def test_claiming_a_pool_lead_gives_it_to_the_rep(rep_user):
    lead = LeadFactory(owner=None)
    services.lead_claim(lead=lead, by=rep_user)
    lead.refresh_from_db()
    assert lead.owner == rep_user


def test_the_second_claim_is_told_who_was_first(rep_user, other_rep):
    lead = LeadFactory(owner=None)
    stale = Lead.objects.get(pk=lead.pk)  # read before the first claim, as a second browser tab would
    services.lead_claim(lead=lead, by=rep_user)
    with pytest.raises(ValidationError, match="claimed this lead first"):
        services.lead_claim(lead=stale, by=other_rep)
    stale.refresh_from_db()
    assert stale.owner == rep_user


def test_a_marketer_cannot_claim_leads(marketer_user):
    lead = LeadFactory(owner=None)
    with pytest.raises(ValidationError, match="cannot own leads"):
        services.lead_claim(lead=lead, by=marketer_user)
    lead.refresh_from_db()
    assert lead.owner is None


def test_snoozing_moves_an_open_task_to_later_only(rep_user):
    due = timezone.now() + timedelta(hours=1)
    task = services.task_create(assignee=rep_user, title="Call", due_at=due)
    later = timezone.now() + timedelta(days=1)
    services.task_snooze(task=task, until=later)
    task.refresh_from_db()
    assert task.due_at == later
    with pytest.raises(ValidationError, match="from now on"):
        services.task_snooze(task=task, until=timezone.now() - timedelta(minutes=1))
    services.task_complete(task=task)
    with pytest.raises(ValidationError, match="already done"):
        services.task_snooze(task=task, until=later + timedelta(days=1))


def test_a_call_and_its_next_step_are_saved_together_or_not_at_all(rep_user):
    lead = LeadFactory(owner=rep_user)
    with pytest.raises(ValidationError) as exc:
        services.activity_log_call(lead=lead, by=rep_user, direction="outbound", outcome="connected",
                                   follow_up_title="Call back", follow_up_due_at=timezone.now() - timedelta(hours=1))
    assert "follow_up_due_at" in exc.value.message_dict
    assert not Activity.objects.filter(lead=lead).exists() and not Task.objects.exists()

    due = timezone.now() + timedelta(days=1)
    services.activity_log_call(lead=lead, by=rep_user, direction="outbound", outcome="connected",
                               follow_up_title="Call back", follow_up_due_at=due)
    task = Task.objects.get(lead=lead)
    assert (task.title, task.assignee, task.due_at) == ("Call back", rep_user, due)


def test_reassigning_a_lead_moves_its_owners_open_tasks(rep_user, other_rep):
    lead = LeadFactory(owner=rep_user)
    due = timezone.now() + timedelta(days=1)
    open_task = services.task_create(assignee=rep_user, title="Call back", due_at=due, lead=lead)
    done = services.task_complete(task=services.task_create(assignee=rep_user, title="Sent deck", due_at=due, lead=lead))
    services.lead_assign_owner(leads=[lead], owner=other_rep)
    open_task.refresh_from_db(), done.refresh_from_db()
    assert open_task.assignee == other_rep and done.assignee == rep_user


# --- Rules that lived in forms: the services hold them for every caller ------------------


def test_an_objection_marked_resolved_without_an_answer_is_refused_and_not_written(rep_user):
    lead = LeadFactory(owner=rep_user)
    with pytest.raises(ValidationError) as refused:
        services.objection_log(lead=lead, by=rep_user, category="price", lead_words="Too expensive", response=" ", is_resolved=True)
    assert refused.value.message_dict == {"response": ["Say how you answered it before marking it resolved."]}
    assert not Objection.objects.exists()


def test_moving_many_leads_to_lost_needs_one_reason_before_any_moves(rep_user):
    leads = [lead_at(LeadStatus.CONTACTED), lead_at(LeadStatus.SQL)]
    with pytest.raises(ValidationError) as refused:
        services.lead_change_stage_many(lead_ids=[lead.pk for lead in leads], to_status=LeadStatus.LOST, by=rep_user, reason=" ")
    assert refused.value.message_dict == {"reason": ["Say why the leads are lost: a reason is required."]}
    assert set(Lead.objects.values_list("status", flat=True)) == {LeadStatus.CONTACTED, LeadStatus.SQL}


@pytest.mark.parametrize("to_status", [LeadStatus.CUSTOMER, "won"])
def test_many_leads_cannot_be_moved_together_to_customer_or_to_no_stage(rep_user, to_status):
    lead = lead_at(LeadStatus.OPPORTUNITY)
    with pytest.raises(ValidationError) as refused:
        services.lead_change_stage_many(lead_ids=[lead.pk], to_status=to_status, by=rep_user)
    assert refused.value.message_dict == {"to_status": [f"{to_status!r} is not a stage leads can be moved to together."]}
    assert Lead.objects.get(pk=lead.pk).status == LeadStatus.OPPORTUNITY


def test_moving_many_leads_moves_each_the_pipeline_allows_and_lists_the_others(rep_user):
    new, customer, contacted = LeadFactory(owner=rep_user), lead_at(LeadStatus.CUSTOMER, owner=rep_user), lead_at(LeadStatus.CONTACTED, owner=rep_user)

    result = services.lead_change_stage_many(
        lead_ids=[new.pk, customer.pk, contacted.pk], to_status=LeadStatus.NURTURING, by=rep_user
    )

    assert result.moved == 2
    assert [(lead.pk, reasons) for lead, reasons in result.refused] == [
        (customer.pk, ["A lead cannot move from Customer to Nurturing. " + pipeline.describe_allowed_moves(LeadStatus.CUSTOMER)])
    ]
    assert dict(Lead.objects.values_list("pk", "status")) == {
        new.pk: LeadStatus.NURTURING, customer.pk: LeadStatus.CUSTOMER, contacted.pk: LeadStatus.NURTURING,
    }


def test_objections_logged_before_the_stage_was_kept_get_it_from_the_history(rep_user):
    from importlib import import_module

    from django.apps import apps

    start = timezone.now() - timedelta(days=10)
    lead = LeadFactory(owner=rep_user, created_at=start)
    services.lead_change_stage(lead=lead, to_status="contacted", by=rep_user, at=start + timedelta(days=1))
    early = services.objection_log(lead=lead, by=rep_user, category="price", lead_words="Too dear",
                                   at=start + timedelta(hours=1))
    late = services.objection_log(lead=lead, by=rep_user, category="timing", lead_words="Later")
    Objection.objects.update(stage="")

    import_module("leads.migrations.0022_objection_stage_when_raised").stage_when_raised(apps, None)

    assert dict(Objection.objects.values_list("pk", "stage")) == {early.pk: LeadStatus.NEW, late.pk: LeadStatus.CONTACTED}
