"""A manager merges two lead rows of one person into one, and can undo the merge."""

from datetime import timedelta

import pytest
import time_machine
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.messages import get_messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from core.events import EventType
from core.models import DomainEvent
from leads import services
from leads.models import Activity, Customer, Deal, FormSubmission, Lead, LeadMerge, Objection, StageChange, Task
from leads.pipeline import LeadStatus
from leads.signals import leads_merging
from tests.factories import CampaignFactory, LeadFactory, PersonaFactory, SourceFactory, lead_at, rep

pytestmark = pytest.mark.django_db

TUESDAY_10 = "2026-03-10 10:00:00Z"
CHANGELIST = reverse("admin:leads_lead_changelist")


@pytest.fixture(autouse=True)
def frozen():
    """Everything these tests make is made at a fixed moment; `frozen.shift(...)` moves on from it."""
    with time_machine.travel(TUESDAY_10, tick=False) as traveller:
        yield traveller


def later(frozen, hours=1):
    frozen.shift(timedelta(hours=hours))


def history(lead, by):
    """A lead with one row of every kind that points at it, made through the services; returns {label: [ids]}."""
    call = services.activity_log_call(
        lead=lead, by=by, direction="outbound", outcome="connected", follow_up_title="Send the pricing",
        follow_up_due_at=timezone.now() + timedelta(days=1),
    )
    note = services.activity_add_note(lead=lead, by=by, body="Prefers email")
    objection = services.objection_log(lead=lead, by=by, category="price", lead_words="Too dear", activity=call)
    deal = services.deal_open(lead=lead, value=1200, by=by)
    submission = services.form_submission_record(lead=lead, form_name="Pricing guide download")
    return {
        "leads.stagechange": sorted(StageChange.objects.filter(lead=lead).values_list("pk", flat=True)),
        "leads.activity": sorted([call.pk, note.pk]),
        "leads.objection": [objection.pk],
        "leads.task": list(Task.objects.filter(lead=lead).values_list("pk", flat=True)),
        "leads.deal": [deal.pk],
        "leads.formsubmission": [submission.pk],
    }


MODELS = {
    "leads.stagechange": StageChange, "leads.activity": Activity, "leads.objection": Objection, "leads.task": Task,
    "leads.deal": Deal, "leads.formsubmission": FormSubmission,
}


def lead_of(label, ids):
    return set(MODELS[label].objects.filter(pk__in=ids).values_list("lead_id", flat=True))


def event_ids(lead):
    return sorted(DomainEvent.objects.filter(lead_id=lead.pk).values_list("pk", flat=True))


# --- The merge ---------------------------------------------------------------------------


def test_every_row_of_the_merged_lead_moves_to_the_kept_lead(manager_user):
    keep, merge = LeadFactory(), LeadFactory()
    keeps_own = history(keep, manager_user)
    rows = history(merge, manager_user)

    record = services.lead_merge(keep=keep, merge=merge, by=manager_user)

    for label, ids in rows.items():
        assert lead_of(label, ids) == {keep.pk}, label
        assert record.moved[label] == sorted(ids), label
        assert lead_of(label, keeps_own[label]) == {keep.pk}, label
    assert record.moved["leads.deal.open"] == rows["leads.deal"]
    assert not StageChange.objects.filter(lead=merge).exists()


def test_the_merged_lead_is_archived_and_the_kept_lead_keeps_its_stage(manager_user):
    keep = lead_at(LeadStatus.SQL, by=manager_user)
    merge = lead_at(LeadStatus.CONTACTED, by=manager_user)

    record = services.lead_merge(keep=keep, merge=merge, by=manager_user)

    assert merge.archived_at == timezone.now()
    assert keep.archived_at is None and keep.status == LeadStatus.SQL
    assert (record.keep, record.merged, record.merged_by, record.merged_at) == (keep, merge, manager_user, timezone.now())
    assert record.undone_at is None


def test_blank_fields_are_filled_from_the_merged_lead_and_the_kept_leads_values_stay(manager_user):
    source, campaign, persona = SourceFactory(), CampaignFactory(), PersonaFactory()
    owner = rep()
    keep = LeadFactory(first_name="Ada", title="CEO", phone="", company=None)
    merge = LeadFactory(
        first_name="Adeline", title="Founder", phone="+33 1 23 45 67 89", source=source, campaign=campaign, persona=persona,
        utm_medium="cpc", utm_content="banner", utm_term="crm", timezone="Europe/Paris", owner=owner,
        consent_given_at=timezone.now() - timedelta(days=3), consent_text="Yes, email me", consent_source="form",
    )
    merge_company = merge.company

    record = services.lead_merge(keep=keep, merge=merge, by=manager_user)

    keep.refresh_from_db()
    assert (keep.first_name, keep.title) == ("Ada", "CEO")
    assert keep.phone == "+33 1 23 45 67 89"
    assert (keep.company, keep.source, keep.campaign, keep.persona) == (merge_company, source, campaign, persona)
    assert keep.owner == owner
    assert (keep.utm_medium, keep.utm_content, keep.utm_term, keep.timezone) == ("cpc", "banner", "crm", "Europe/Paris")
    assert (keep.consent_given_at, keep.consent_text, keep.consent_source) == (
        timezone.now() - timedelta(days=3), "Yes, email me", "form",
    )
    assert "+33 1 23 45 67 89" in keep.search_text
    assert record.filled == {
        "phone": "", "company": None, "source": None, "campaign": None, "persona": None, "utm_medium": "",
        "utm_content": "", "utm_term": "", "timezone": "", "owner": None,
        "consent_given_at": None, "consent_text": "", "consent_source": "",
    }


def test_a_kept_lead_with_its_own_consent_keeps_it_whole(manager_user):
    given = timezone.now() - timedelta(days=10)
    keep = LeadFactory(consent_given_at=given, consent_text="Newsletter", consent_source="")
    merge = LeadFactory(consent_given_at=timezone.now(), consent_text="Webinar", consent_source="webinar page")

    record = services.lead_merge(keep=keep, merge=merge, by=manager_user)

    keep.refresh_from_db()
    assert (keep.consent_given_at, keep.consent_text, keep.consent_source) == (given, "Newsletter", "")
    assert not set(record.filled) & {"consent_given_at", "consent_text", "consent_source"}


def test_a_kept_lead_with_only_a_phone_takes_the_merged_leads_address(manager_user):
    keep = LeadFactory(email="", phone="+44 20 7946 0000")
    merge = LeadFactory(email="Ada@Example.org")

    services.lead_merge(keep=keep, merge=merge, by=manager_user)

    keep.refresh_from_db()
    assert keep.email == "ada@example.org"
    assert Lead.objects.live().filter(email="ada@example.org").get() == keep


def test_the_kept_lead_takes_the_later_last_touch(manager_user, frozen):
    keep, merge = LeadFactory(owner=manager_user), LeadFactory(owner=manager_user)
    services.activity_log_call(lead=keep, by=manager_user, direction="outbound", outcome="connected")
    later(frozen)
    services.activity_log_call(lead=merge, by=manager_user, direction="outbound", outcome="connected")

    record = services.lead_merge(keep=keep, merge=merge, by=manager_user)

    keep.refresh_from_db()
    assert keep.last_touch_at == timezone.now()
    assert record.filled["last_touch_at"] == (timezone.now() - timedelta(hours=1)).isoformat()


def test_the_merged_leads_events_move_and_the_merge_is_in_the_log(manager_user):
    keep, merge = LeadFactory(), LeadFactory()
    services.activity_add_note(lead=merge, by=manager_user, body="Met at the fair")
    keeps_events, merges_events = event_ids(keep), event_ids(merge)

    record = services.lead_merge(keep=keep, merge=merge, by=manager_user)

    assert record.events_moved == merges_events
    assert set(DomainEvent.objects.filter(pk__in=merges_events).values_list("lead_id", flat=True)) == {keep.pk}
    assert event_ids(merge) == []
    merged_event = DomainEvent.objects.get(type=EventType.LEAD_MERGED)
    assert event_ids(keep) == sorted([*keeps_events, *merges_events, merged_event.pk])
    assert (merged_event.lead_id, merged_event.actor_user, merged_event.subject_type, merged_event.subject_id) == (
        keep.pk, manager_user, "leadmerge", record.pk,
    )
    assert merged_event.payload["merged"] == merge.pk


def test_a_customer_merged_into_a_customer_makes_the_kept_lead_its_first_contact(manager_user):
    keep = lead_at(LeadStatus.CUSTOMER, by=manager_user)
    merge = lead_at(LeadStatus.CUSTOMER, by=manager_user)
    customer = Customer.objects.get(primary_lead=merge)

    record = services.lead_merge(keep=keep, merge=merge, by=manager_user)

    customer.refresh_from_db()
    assert customer.primary_lead == keep
    assert record.moved["leads.customer"] == [customer.pk]
    assert "leads.deal.open" not in record.moved


# --- What a merge refuses --------------------------------------------------------------


def assert_nothing_merged(keep, merge, events_before):
    merge.refresh_from_db()
    assert merge.archived_at is None
    assert not LeadMerge.objects.exists()
    assert DomainEvent.objects.count() == events_before
    assert not DomainEvent.objects.filter(type=EventType.LEAD_MERGED).exists()
    assert StageChange.objects.filter(lead=merge).exists()


def test_a_rep_cannot_merge_leads_and_nothing_changes(manager_user):
    rep_user = rep()
    keep, merge = LeadFactory(owner=rep_user), LeadFactory(owner=rep_user)
    rows = history(merge, manager_user)
    events_before = DomainEvent.objects.count()

    with pytest.raises(PermissionDenied, match="Only a manager can merge"):
        services.lead_merge(keep=keep, merge=merge, by=rep_user)

    assert_nothing_merged(keep, merge, events_before)
    for label, ids in rows.items():
        assert lead_of(label, ids) == {merge.pk}, label


def test_a_lead_cannot_be_merged_into_itself(manager_user):
    lead = LeadFactory()
    events_before = DomainEvent.objects.count()

    with pytest.raises(ValidationError) as refused:
        services.lead_merge(keep=lead, merge=Lead.objects.get(pk=lead.pk), by=manager_user)

    assert "itself" in refused.value.message_dict["merge"][0]
    assert_nothing_merged(lead, lead, events_before)


@pytest.mark.parametrize("side", ["keep", "merge"])
def test_an_archived_lead_is_not_merged(manager_user, side):
    leads = {"keep": LeadFactory(), "merge": LeadFactory()}
    services.lead_archive(leads=[leads[side]], by=manager_user)
    events_before = DomainEvent.objects.count()

    with pytest.raises(ValidationError) as refused:
        services.lead_merge(keep=leads["keep"], merge=leads["merge"], by=manager_user)

    assert "is archived" in refused.value.message_dict[side][0]
    assert not LeadMerge.objects.exists()
    assert DomainEvent.objects.count() == events_before


def test_an_erased_lead_is_not_merged(manager_user):
    keep, merge = LeadFactory(), LeadFactory()
    Lead.objects.filter(pk=merge.pk).update(erased_at=timezone.now())

    with pytest.raises(ValidationError) as refused:
        services.lead_merge(keep=keep, merge=merge, by=manager_user)

    assert "was erased" in refused.value.message_dict["merge"][0]
    assert not LeadMerge.objects.exists()


def test_a_lead_already_merged_is_not_merged_again(manager_user):
    keep, merge, third = LeadFactory(), LeadFactory(), LeadFactory()
    services.lead_merge(keep=keep, merge=merge, by=manager_user)

    with pytest.raises(ValidationError) as refused:
        services.lead_merge(keep=third, merge=merge, by=manager_user)

    assert f"already merged into lead #{keep.pk}" in refused.value.message_dict["merge"][0]


def test_the_system_does_not_merge_two_reps_leads_but_a_manager_does(manager_user):
    ann, bob = rep(), rep()
    keep, merge = LeadFactory(owner=ann), LeadFactory(owner=bob)
    bobs_task = services.task_create(assignee=bob, lead=merge, title="Call back", due_at=timezone.now() + timedelta(days=1))
    done_task = services.task_create(assignee=bob, lead=merge, title="Intro", due_at=timezone.now() + timedelta(hours=1))
    services.task_complete(task=done_task)

    with pytest.raises(ValidationError) as refused:
        services.lead_merge(keep=keep, merge=merge, by=None)
    assert "two reps" in refused.value.message_dict["merge"][0]
    assert not LeadMerge.objects.exists()

    record = services.lead_merge(keep=keep, merge=merge, by=manager_user)

    keep.refresh_from_db()
    bobs_task.refresh_from_db()
    done_task.refresh_from_db()
    assert keep.owner == ann
    assert (bobs_task.lead, bobs_task.assignee) == (keep, ann)
    assert (done_task.lead, done_task.assignee) == (keep, bob)
    assert record.moved["leads.task.assignee"] == [bobs_task.pk]


def test_a_customer_is_not_merged_into_a_lead_that_is_not_one(manager_user):
    keep = lead_at(LeadStatus.SQL, by=manager_user)
    merge = lead_at(LeadStatus.CUSTOMER, by=manager_user)

    with pytest.raises(ValidationError) as refused:
        services.lead_merge(keep=keep, merge=merge, by=manager_user)

    assert "keep the customer" in refused.value.message_dict["keep"][0]
    assert not LeadMerge.objects.exists()


def test_two_customers_in_their_own_name_are_not_merged(manager_user):
    keep = lead_at(LeadStatus.CUSTOMER, by=manager_user, company=None)
    merge = lead_at(LeadStatus.CUSTOMER, by=manager_user, company=None)

    with pytest.raises(ValidationError) as refused:
        services.lead_merge(keep=keep, merge=merge, by=manager_user)

    assert "two customers" in refused.value.message_dict["merge"][0]
    assert Customer.objects.get(primary_lead=merge)


def test_a_receiver_that_fails_takes_the_whole_merge_back(manager_user):
    keep, merge = LeadFactory(), LeadFactory()
    rows = history(merge, manager_user)
    events_before = DomainEvent.objects.count()

    def broken(sender, **kwargs):
        raise RuntimeError("a receiver failed")

    leads_merging.connect(broken, dispatch_uid="test.broken")
    try:
        with pytest.raises(RuntimeError):
            services.lead_merge(keep=keep, merge=merge, by=manager_user)
    finally:
        leads_merging.disconnect(dispatch_uid="test.broken")

    assert_nothing_merged(keep, merge, events_before)
    for label, ids in rows.items():
        assert lead_of(label, ids) == {merge.pk}, label


# --- Undo ----------------------------------------------------------------------------------


def test_undo_gives_back_everything_the_merge_moved(manager_user, frozen):
    source = SourceFactory()
    keep = LeadFactory(phone="", source=None, owner=manager_user)
    merge = LeadFactory(phone="+1 555 0100", source=source, owner=manager_user)
    rows = history(merge, manager_user)
    merges_events = event_ids(merge)
    record = services.lead_merge(keep=keep, merge=merge, by=manager_user)
    later(frozen)

    lead = services.lead_merge_undo(merge=record, by=manager_user)

    assert lead == merge and lead.archived_at is None
    assert Lead.objects.live().get(email=merge.email) == merge
    for label, ids in rows.items():
        assert lead_of(label, ids) == {merge.pk}, label
    assert event_ids(merge) == merges_events
    keep.refresh_from_db()
    assert (keep.phone, keep.source, keep.last_touch_at) == ("", None, None)
    record.refresh_from_db()
    assert (record.undone_at, record.undone_by) == (timezone.now(), manager_user)
    unmerged = DomainEvent.objects.get(type=EventType.LEAD_UNMERGED)
    assert (unmerged.lead_id, unmerged.actor_user, unmerged.subject_id) == (keep.pk, manager_user, record.pk)
    assert unmerged.payload["merged"] == merge.pk
    assert unmerged.payload["restored"] == ["last_touch_at", "phone", "source"]
    assert EventType(unmerged.type).label == "Merge undone"


def test_undo_leaves_what_was_added_or_changed_on_the_kept_lead_since(manager_user, frozen):
    keep = LeadFactory(phone="", owner=manager_user)
    merge = LeadFactory(phone="+1 555 0100", owner=manager_user)
    record = services.lead_merge(keep=keep, merge=merge, by=manager_user)
    later(frozen)
    note = services.activity_add_note(lead=keep, by=manager_user, body="After the merge")
    services.lead_update(lead=keep, by=manager_user, phone="+1 555 0199")

    services.lead_merge_undo(merge=record, by=manager_user)

    note.refresh_from_db()
    keep.refresh_from_db()
    assert note.lead == keep
    assert keep.phone == "+1 555 0199"
    assert DomainEvent.objects.filter(type=EventType.ACTIVITY_LOGGED, subject_id=note.pk, lead_id=keep.pk).exists()


def test_a_kept_lead_gives_back_the_address_it_took(manager_user):
    keep = LeadFactory(email="", phone="+44 20 7946 0000")
    merge = LeadFactory(email="ada@example.org")
    record = services.lead_merge(keep=keep, merge=merge, by=manager_user)

    services.lead_merge_undo(merge=record, by=manager_user)

    keep.refresh_from_db()
    assert keep.email == ""
    assert Lead.objects.live().get(email="ada@example.org") == merge


def test_a_deal_won_on_the_kept_lead_since_stays_with_it(manager_user, frozen):
    keep, merge = LeadFactory(owner=manager_user), LeadFactory(owner=manager_user)
    deal = services.deal_open(lead=merge, value=500, by=manager_user)
    record = services.lead_merge(keep=keep, merge=merge, by=manager_user)
    later(frozen)
    services.lead_convert_to_customer(lead=keep, deal_value=500, by=manager_user)

    services.lead_merge_undo(merge=record, by=manager_user)

    deal.refresh_from_db()
    assert (deal.lead, deal.status) == (keep, Deal.Status.WON)
    assert DomainEvent.objects.get(type=EventType.LEAD_UNMERGED).payload["deals_kept"] == [deal.pk]


def test_undo_is_refused_when_another_lead_has_taken_the_address_and_nothing_changes(manager_user, frozen):
    keep, merge = LeadFactory(), LeadFactory(email="ada@example.org")
    rows = history(merge, manager_user)
    record = services.lead_merge(keep=keep, merge=merge, by=manager_user)
    later(frozen)
    newcomer = LeadFactory(email="ADA@example.org")
    events_before = DomainEvent.objects.count()

    with pytest.raises(ValidationError) as refused:
        services.lead_merge_undo(merge=record, by=manager_user)

    assert f"Lead #{newcomer.pk}" in refused.value.message_dict["merged"][0]
    merge.refresh_from_db()
    record.refresh_from_db()
    assert merge.archived_at is not None and record.undone_at is None
    for label, ids in rows.items():
        assert lead_of(label, ids) == {keep.pk}, label
    assert event_ids(merge) == []
    assert DomainEvent.objects.count() == events_before


def test_a_merge_is_undone_once(manager_user):
    keep, merge = LeadFactory(), LeadFactory()
    record = services.lead_merge(keep=keep, merge=merge, by=manager_user)
    services.lead_merge_undo(merge=record, by=manager_user)
    events_before = DomainEvent.objects.count()

    with pytest.raises(ValidationError) as refused:
        services.lead_merge_undo(merge=LeadMerge.objects.get(pk=record.pk), by=manager_user)

    assert "already undone" in refused.value.message_dict["merge"][0]
    assert DomainEvent.objects.count() == events_before


def test_a_rep_cannot_undo_a_merge(manager_user):
    keep, merge = LeadFactory(), LeadFactory()
    record = services.lead_merge(keep=keep, merge=merge, by=manager_user)

    with pytest.raises(PermissionDenied):
        services.lead_merge_undo(merge=record, by=rep())

    record.refresh_from_db()
    merge.refresh_from_db()
    assert record.undone_at is None and merge.archived_at is not None


def test_a_merge_whose_kept_lead_was_merged_again_is_undone_after_that_one(manager_user):
    first, second, third = LeadFactory(), LeadFactory(), LeadFactory()
    inner = services.lead_merge(keep=second, merge=first, by=manager_user)
    outer = services.lead_merge(keep=third, merge=second, by=manager_user)

    with pytest.raises(ValidationError) as refused:
        services.lead_merge_undo(merge=inner, by=manager_user)
    assert f"merged into lead #{third.pk}" in refused.value.message_dict["keep"][0]

    services.lead_merge_undo(merge=outer, by=manager_user)
    services.lead_merge_undo(merge=inner, by=manager_user)

    assert set(Lead.objects.live().values_list("pk", flat=True)) == {first.pk, second.pk, third.pk}
    assert StageChange.objects.filter(lead=first).count() == 1


# --- The admin ---------------------------------------------------------------------------


def post_action(client, leads, **data):
    payload = {"action": "merge_leads", ACTION_CHECKBOX_NAME: [lead.pk for lead in leads], "index": 0, **data}
    return client.post(CHANGELIST, payload)


def shown(response):
    return [str(message) for message in get_messages(response.wsgi_request)]


def test_a_manager_merges_two_leads_from_the_lead_list(client, manager_user):
    keep = LeadFactory(first_name="Ada", email="ada@example.org")
    merge = LeadFactory(first_name="Ada", email="ada.l@example.org")
    note = services.activity_add_note(lead=merge, by=manager_user, body="Met at the fair")
    client.force_login(manager_user)

    page = post_action(client, [keep, merge])

    html = page.content.decode()
    assert page.status_code == 200
    assert "Merge two leads" in html and f"#{keep.pk} Ada" in html and f"#{merge.pk} Ada" in html

    done = post_action(client, [keep, merge], apply="1", keep=keep.pk)

    assert done.status_code == 302
    record = LeadMerge.objects.get()
    assert (record.keep, record.merged, record.merged_by) == (keep, merge, manager_user)
    merge.refresh_from_db()
    note.refresh_from_db()
    assert merge.archived_at is not None and note.lead == keep
    assert any("merged into" in message for message in shown(done))


def test_the_merge_action_needs_exactly_two_leads(client, manager_user):
    leads = [LeadFactory(), LeadFactory(), LeadFactory()]
    client.force_login(manager_user)

    response = post_action(client, leads, apply="1", keep=leads[0].pk)

    assert response.status_code == 302
    assert any("exactly two" in message for message in shown(response))
    assert not LeadMerge.objects.exists()


def test_a_refused_merge_is_shown_as_a_message_and_nothing_is_merged(client, manager_user):
    keep = lead_at(LeadStatus.NEW, by=manager_user)
    merge = lead_at(LeadStatus.CUSTOMER, by=manager_user)
    client.force_login(manager_user)

    response = post_action(client, [keep, merge], apply="1", keep=keep.pk)

    assert response.status_code == 302
    assert any("Nothing was merged" in message and "keep the customer" in message for message in shown(response))
    assert not LeadMerge.objects.exists()


def test_a_marketer_is_not_offered_the_merge_and_a_forged_one_merges_nothing(client, marketer_user):
    keep, merge = LeadFactory(), LeadFactory()
    client.force_login(marketer_user)

    assert "merge_leads" not in client.get(CHANGELIST).content.decode()
    response = post_action(client, [keep, merge], apply="1", keep=keep.pk)

    assert response.status_code in (200, 302)
    assert not LeadMerge.objects.exists()
    merge.refresh_from_db()
    assert merge.archived_at is None


def test_a_manager_undoes_a_merge_from_its_record(client, manager_user):
    keep, merge = LeadFactory(), LeadFactory()
    record = services.lead_merge(keep=keep, merge=merge, by=manager_user)
    client.force_login(manager_user)
    undo_url = reverse("admin:leads_leadmerge_undo", args=[record.pk])

    assert undo_url in client.get(reverse("admin:leads_leadmerge_changelist")).content.decode()
    assert "Undo this merge" in client.get(undo_url).content.decode()
    done = client.post(undo_url)

    assert done.status_code == 302
    merge.refresh_from_db()
    record.refresh_from_db()
    assert merge.archived_at is None and record.undone_by == manager_user

    again = client.post(undo_url)
    assert any("already undone" in message for message in shown(again))


def test_the_undo_action_reports_a_refusal_per_merge(client, manager_user):
    keep, merge = LeadFactory(), LeadFactory(email="ada@example.org")
    record = services.lead_merge(keep=keep, merge=merge, by=manager_user)
    LeadFactory(email="ada@example.org")
    client.force_login(manager_user)

    response = client.post(
        reverse("admin:leads_leadmerge_changelist"), {"action": "undo", ACTION_CHECKBOX_NAME: [record.pk], "index": 0},
    )

    assert response.status_code == 302
    assert any("not undone" in message for message in shown(response))
    record.refresh_from_db()
    assert record.undone_at is None


def test_a_marketer_cannot_undo_a_merge(client, manager_user, marketer_user):
    record = services.lead_merge(keep=LeadFactory(), merge=LeadFactory(), by=manager_user)
    client.force_login(marketer_user)

    response = client.post(reverse("admin:leads_leadmerge_undo", args=[record.pk]))

    assert response.status_code == 403
    record.refresh_from_db()
    assert record.undone_at is None


def bulk_merges(n, by):
    """Merge records in bulk, for query counts (the services are tested above)."""
    stamp = Lead.objects.count()
    leads = Lead.objects.bulk_create(
        Lead(email=f"bulk{stamp + i}@example.org", search_text=f"bulk{stamp + i}", archived_at=timezone.now() if i % 2 else None)
        for i in range(2 * n)
    )
    return LeadMerge.objects.bulk_create(
        LeadMerge(keep=leads[i], merged=leads[i + 1], merged_by=by, moved={"leads.activity": [1, 2]}) for i in range(0, 2 * n, 2)
    )


def test_the_list_of_merges_does_not_query_more_with_more_merges(client, manager_user, django_assert_max_num_queries):
    client.force_login(manager_user)
    changelist = reverse("admin:leads_leadmerge_changelist")
    bulk_merges(10, manager_user)
    with django_assert_max_num_queries(15) as at_10:
        assert client.get(changelist).status_code == 200
    bulk_merges(990, manager_user)
    with django_assert_max_num_queries(15) as at_1000:
        assert client.get(changelist).status_code == 200
    assert len(at_1000.captured_queries) == len(at_10.captured_queries)
