"""Every lead service that changes state appends its event in the same transaction; a refused call appends none."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError

from core.models import ActorKind, DomainEvent
from leads import services
from leads.models import Deal, Objection
from leads.pipeline import LeadStatus
from tests.factories import CompanyFactory, LeadFactory, lead_at, rep

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def events_of(call):
    """What `call` appended: (type, lead id, subject type, subject id, actor kind, actor user id, payload) per row."""
    last = DomainEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    result = call()
    rows = DomainEvent.objects.filter(id__gt=last).order_by("id")
    return result, [
        (e.type, e.lead_id, e.subject_type, e.subject_id, e.actor_kind, e.actor_user_id, e.payload) for e in rows
    ]


def test_creating_updating_claiming_assigning_and_archiving_leads(rep_user, manager_user):
    lead, rows = events_of(lambda: services.lead_create(email="ada@example.org", by=rep_user))
    assert rows == [("lead.created", lead.pk, "", None, ActorKind.USER, rep_user.pk,
                     {"source": None, "campaign": None, "owner": None})]

    _, rows = events_of(lambda: services.lead_claim(lead=lead, by=rep_user))
    assert rows == [("lead.claimed", lead.pk, "", None, ActorKind.USER, rep_user.pk, {"owner": rep_user.pk})]

    _, rows = events_of(lambda: services.lead_update(lead=lead, by=rep_user, first_name="Ada", last_name="L"))
    assert rows == [("lead.updated", lead.pk, "", None, ActorKind.USER, rep_user.pk, {"fields": ["first_name", "last_name"]})]

    other, already_theirs = LeadFactory(), LeadFactory(owner=manager_user)
    count, rows = events_of(lambda: services.lead_assign_owner(leads=[lead, other, already_theirs], owner=manager_user, by=manager_user))
    assert count == 2 and rows == [
        ("lead.assigned", pk, "", None, ActorKind.USER, manager_user.pk, {"owner": manager_user.pk})
        for pk in sorted([lead.pk, other.pk])
    ]

    count, rows = events_of(lambda: services.lead_archive(leads=[lead, other], by=manager_user))
    assert count == 2 and [(r[0], r[1]) for r in rows] == [("lead.archived", pk) for pk in sorted([lead.pk, other.pk])]
    _, rows = events_of(lambda: services.lead_archive(leads=[lead], by=manager_user))
    assert rows == []  # already archived: nothing changed, nothing told


def test_a_system_made_lead_names_what_made_it():
    lead, rows = events_of(lambda: services.lead_create(email="ada@example.org", actor="CSV import"))
    assert rows[0][4:6] == (ActorKind.SYSTEM, None)
    assert DomainEvent.objects.get(lead_id=lead.pk).actor_ref == {"label": "CSV import"}


def test_stage_moves_calls_notes_and_meetings(rep_user):
    lead = LeadFactory(owner=rep_user)
    call, rows = events_of(lambda: services.activity_log_call(
        lead=lead, by=rep_user, direction="outbound", outcome="connected",
        follow_up_title="Send the pricing", follow_up_due_at=NOW + timedelta(days=1),
    ))
    change = lead.stage_changes.get(to_status=LeadStatus.CONTACTED)
    task = call.lead.tasks.get()
    assert rows == [
        ("activity.logged", lead.pk, "activity", call.pk, ActorKind.USER, rep_user.pk, {"kind": "call"}),
        ("lead.stage_changed", lead.pk, "stagechange", change.pk, ActorKind.USER, rep_user.pk, {"from": "new", "to": "contacted"}),
        ("task.created", lead.pk, "task", task.pk, ActorKind.USER, rep_user.pk,
         {"assignee": rep_user.pk, "due_at": (NOW + timedelta(days=1)).isoformat()}),
    ]

    move, rows = events_of(lambda: services.lead_change_stage(lead=lead, to_status=LeadStatus.NURTURING, by=rep_user))
    assert rows == [("lead.stage_changed", lead.pk, "stagechange", move.pk, ActorKind.USER, rep_user.pk,
                     {"from": "contacted", "to": "nurturing"})]

    note, rows = events_of(lambda: services.activity_add_note(lead=lead, by=rep_user, body="Budget in Q3"))
    meeting, more = events_of(lambda: services.activity_log_meeting(lead=lead, by=rep_user, occurred_at=NOW - timedelta(hours=2)))
    assert [r[:4] for r in rows + more] == [
        ("activity.logged", lead.pk, "activity", note.pk), ("activity.logged", lead.pk, "activity", meeting.pk)
    ]
    assert DomainEvent.objects.get(subject_type="activity", subject_id=meeting.pk).occurred_at == NOW - timedelta(hours=2)


def test_objections_tasks_and_companies(rep_user):
    lead = LeadFactory(owner=rep_user)
    objection, rows = events_of(lambda: services.objection_log(
        lead=lead, by=rep_user, category=Objection.Category.PRICE, lead_words="Too expensive"
    ))
    assert rows == [("objection.logged", lead.pk, "objection", objection.pk, ActorKind.USER, rep_user.pk,
                     {"category": "price", "resolved": False})]
    _, rows = events_of(lambda: services.objection_resolve(objection=objection, response="Annual discount", by=rep_user))
    assert rows == [("objection.resolved", lead.pk, "objection", objection.pk, ActorKind.USER, rep_user.pk, {})]

    task, rows = events_of(lambda: services.task_create(assignee=rep_user, title="Call back", due_at=NOW + timedelta(hours=1),
                                                         lead=lead, by=rep_user))
    assert rows[0][:4] == ("task.created", lead.pk, "task", task.pk)
    _, rows = events_of(lambda: services.task_snooze(task=task, until=NOW + timedelta(days=2), by=rep_user))
    assert rows == [("task.snoozed", lead.pk, "task", task.pk, ActorKind.USER, rep_user.pk,
                     {"due_at": (NOW + timedelta(days=2)).isoformat(), "from": (NOW + timedelta(hours=1)).isoformat()})]
    _, rows = events_of(lambda: services.task_complete(task=task, by=rep_user))
    _, again = events_of(lambda: services.task_complete(task=task, by=rep_user))
    assert rows == [("task.done", lead.pk, "task", task.pk, ActorKind.USER, rep_user.pk, {})] and again == []

    company = CompanyFactory()
    _, rows = events_of(lambda: services.company_update(company=company, by=rep_user, name="Initech"))
    assert rows == [("company.updated", None, "company", company.pk, ActorKind.USER, rep_user.pk, {"fields": ["name"]})]


def test_deals_opened_won_and_lost(rep_user):
    lead = lead_at(LeadStatus.SQL, owner=rep_user)
    deal, rows = events_of(lambda: services.deal_open(lead=lead, value="1200", currency="eur", by=rep_user))
    to_opportunity = lead.stage_changes.get(to_status=LeadStatus.OPPORTUNITY)
    assert rows == [
        ("deal.created", lead.pk, "deal", deal.pk, ActorKind.USER, rep_user.pk, {"value": "1200", "currency": "EUR"}),
        ("lead.stage_changed", lead.pk, "stagechange", to_opportunity.pk, ActorKind.USER, rep_user.pk,
         {"from": "sql", "to": "opportunity"}),
    ]

    won, rows = events_of(lambda: services.lead_convert_to_customer(lead=lead, deal_value="1500.50", by=rep_user))
    assert won.pk == deal.pk and [r[:4] for r in rows] == [
        ("deal.won", lead.pk, "deal", deal.pk),
        ("lead.stage_changed", lead.pk, "stagechange", lead.stage_changes.get(to_status=LeadStatus.CUSTOMER).pk),
    ]
    assert rows[0][6] == {"value": "1500.50", "currency": "EUR", "customer": won.customer_id}

    other = lead_at(LeadStatus.OPPORTUNITY, owner=rep_user)
    open_deal = Deal.objects.get(lead=other) if Deal.objects.filter(lead=other).exists() else services.deal_open(lead=other, value=10)
    _, rows = events_of(lambda: services.deal_mark_lost(deal=open_deal, reason="Chose a competitor", by=rep_user))
    assert [r[:4] for r in rows] == [
        ("deal.lost", other.pk, "deal", open_deal.pk),
        ("lead.stage_changed", other.pk, "stagechange", other.stage_changes.get(to_status=LeadStatus.LOST).pk),
    ]


def test_a_lead_converted_without_an_open_deal_gets_its_deal_created_and_won(rep_user):
    lead = lead_at(LeadStatus.SQL, owner=rep_user)
    deal, rows = events_of(lambda: services.lead_convert_to_customer(lead=lead, deal_value="900", by=rep_user))
    assert [r[:4] for r in rows][:2] == [("deal.created", lead.pk, "deal", deal.pk), ("deal.won", lead.pk, "deal", deal.pk)]


def test_a_form_submission_is_told_as_the_forms_doing(rep_user):
    lead = LeadFactory()
    submission, rows = events_of(lambda: services.form_submission_record(lead=lead, form_name="Pricing guide"))
    assert rows == [("form.submitted", lead.pk, "formsubmission", submission.pk, ActorKind.FORM, None, {"resource": None})]


REFUSED = {
    "lead without email or phone": lambda lead, user: services.lead_create(by=user, first_name="Nobody"),
    "move not allowed": lambda lead, user: services.lead_change_stage(lead=lead, to_status=LeadStatus.CUSTOMER, by=user),
    "lost without a reason": lambda lead, user: services.lead_change_stage(lead=lead, to_status=LeadStatus.LOST, by=user),
    "call without an outcome": lambda lead, user: services.activity_log_call(lead=lead, by=user, direction="outbound", outcome=""),
    "empty note": lambda lead, user: services.activity_add_note(lead=lead, by=user, body="  "),
    "claim of a lead one owns": lambda lead, user: services.lead_claim(lead=lead, by=user),
    "resolve without a response": lambda lead, user: services.objection_resolve(
        objection=Objection.objects.create(lead=lead, category="price", lead_words="Too much"), by=user
    ),
    "task due in the past": lambda lead, user: services.task_create(
        assignee=user, title="Call", due_at=NOW - timedelta(hours=1), lead=lead, by=user
    ),
    "negative deal": lambda lead, user: services.deal_open(lead=lead, value="-5", by=user),
    "deal lost without a reason": lambda lead, user: services.deal_mark_lost(
        deal=Deal.objects.create(lead=lead, value=5, currency="EUR"), reason=" ", by=user
    ),
    "form without a name": lambda lead, user: services.form_submission_record(lead=lead, form_name=" "),
    "assign to a user who cannot own leads": lambda lead, user: services.lead_assign_owner(
        leads=[lead], owner=rep(username="gone", is_active=False), by=None
    ),
}


@pytest.mark.parametrize("call", REFUSED.values(), ids=REFUSED.keys())
def test_a_refused_call_appends_no_event(call, rep_user):
    lead = LeadFactory(owner=rep_user)
    before = DomainEvent.objects.count()
    with pytest.raises(ValidationError):
        call(lead, rep_user)
    assert DomainEvent.objects.count() == before



def test_a_move_a_sequence_makes_names_the_sequence_and_step_by_id():
    from core.events import Actor

    lead = LeadFactory()
    change, rows = events_of(lambda: services.lead_change_stage(
        lead=lead, to_status=LeadStatus.NURTURING, actor="sequence Welcome step 2",
        source=Actor.sequence(sequence_id=41, step_id=97),
    ))

    assert (change.source_sequence_id, change.source_step_id, change.changed_by_label) == (41, 97, "sequence Welcome step 2")
    assert rows == [("lead.stage_changed", lead.pk, "stagechange", change.pk, ActorKind.SEQUENCE, None,
                     {"from": "new", "to": "nurturing"})]
    assert DomainEvent.objects.get(subject_id=change.pk).actor_ref == {"sequence": 41, "step": 97}


# What the permission policy refuses, the services refuse too, for every caller: another rep's lead, a pool
# lead not yet claimed, a marketer working a lead, a rep assigning or archiving.
POLICY_REFUSED = {
    "note on another rep's lead": lambda lead, user: services.activity_add_note(lead=lead, by=user, body="Hi"),
    "call on another rep's lead": lambda lead, user: services.activity_log_call(
        lead=lead, by=user, direction="outbound", outcome="connected"
    ),
    "move another rep's lead": lambda lead, user: services.lead_change_stage(lead=lead, to_status=LeadStatus.CONTACTED, by=user),
    "edit another rep's lead": lambda lead, user: services.lead_update(lead=lead, by=user, first_name="X"),
    "objection on another rep's lead": lambda lead, user: services.objection_log(
        lead=lead, by=user, category="price", lead_words="Too much"
    ),
    "deal on another rep's lead": lambda lead, user: services.deal_open(lead=lead, value=10, by=user),
    "convert another rep's lead": lambda lead, user: services.lead_convert_to_customer(lead=lead, deal_value=10, by=user),
    "assign as a rep": lambda lead, user: services.lead_assign_owner(leads=[lead], owner=user, by=user),
    "archive as a rep": lambda lead, user: services.lead_archive(leads=[lead], by=user),
}


@pytest.mark.parametrize("call", POLICY_REFUSED.values(), ids=POLICY_REFUSED.keys())
def test_what_the_policy_refuses_the_service_refuses_and_appends_no_event(call, rep_user):
    from django.core.exceptions import PermissionDenied

    lead = LeadFactory(owner=rep(username="rep2"))
    before = DomainEvent.objects.count()
    with pytest.raises(PermissionDenied):
        call(lead, rep_user)
    assert DomainEvent.objects.count() == before


def test_a_marketer_may_mark_a_lead_mql_and_move_it_nowhere_else(marketer_user):
    from django.core.exceptions import PermissionDenied

    from core import policy

    assert policy.MQL == LeadStatus.MQL  # core names the stage without importing leads
    from tests.factories import lead_at

    lead = lead_at(LeadStatus.NURTURING, owner=rep(username="rep2"))
    moves = DomainEvent.objects.filter(type="lead.stage_changed").count()
    for to_status in (LeadStatus.CONTACTED, LeadStatus.SQL, LeadStatus.DISQUALIFIED):
        with pytest.raises(PermissionDenied, match="a marketer can mark it MQL"):
            services.lead_change_stage(lead=lead, to_status=to_status, reason="No budget", by=marketer_user)
    assert DomainEvent.objects.filter(type="lead.stage_changed").count() == moves

    change = services.lead_change_stage(lead=lead, to_status=LeadStatus.MQL, by=marketer_user)

    assert (change.to_status, change.changed_by) == (LeadStatus.MQL, marketer_user)
    assert DomainEvent.objects.filter(type="lead.stage_changed", actor_user=marketer_user).count() == 1


def test_a_bulk_move_lists_the_leads_the_user_may_not_move_and_moves_the_rest(rep_user):
    mine = LeadFactory(owner=rep_user)
    theirs = LeadFactory(owner=rep(username="rep2"))

    result = services.lead_change_stage_many(lead_ids=[mine.pk, theirs.pk], to_status=LeadStatus.CONTACTED, by=rep_user)

    assert result.moved == 1
    assert [(lead.pk, reasons[0][:40]) for lead, reasons in result.refused] == [
        (theirs.pk, "Only the lead's owner (or a manager) can")
    ]
    theirs.refresh_from_db()
    assert theirs.status == LeadStatus.NEW
