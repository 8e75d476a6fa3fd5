"""Tags on leads: added and removed through the services, each with its event, by who may work the lead."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from core.models import ActorKind, DomainEvent
from leads.models import LeadTag, Tag
from leads.tags import lead_tag_add, lead_tag_remove, leads_tag_add
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def tag_events(lead=None):
    rows = DomainEvent.objects.filter(type__in=["lead.tagged", "lead.untagged"]).order_by("id")
    if lead is not None:
        rows = rows.filter(lead_id=lead.pk)
    return [(e.type, e.lead_id, e.actor_user_id, e.payload["name"]) for e in rows]


def test_adding_a_tag_records_who_and_when_and_adding_it_again_in_another_case_changes_nothing(rep_user):
    lead = LeadFactory(owner=rep_user)

    added = lead_tag_add(lead=lead, name="  Webinar   2026 ", by=rep_user)
    again = lead_tag_add(lead=lead, name="webinar 2026", by=rep_user)

    assert again.pk == added.pk and (added.added_at, added.added_by) == (NOW, rep_user)
    assert list(lead.tags.values_list("name", flat=True)) == ["Webinar 2026"]
    assert tag_events(lead) == [("lead.tagged", lead.pk, rep_user.pk, "Webinar 2026")]
    event = DomainEvent.objects.get(type="lead.tagged")
    assert (event.actor_kind, event.occurred_at, event.payload["tag"]) == (ActorKind.USER, NOW, Tag.objects.get().pk)


def test_removing_a_tag_records_it_once_and_keeps_the_tag_for_other_leads(rep_user):
    lead, other = LeadFactory(owner=rep_user), LeadFactory(owner=rep_user)
    lead_tag_add(lead=lead, name="VIP", by=rep_user)
    lead_tag_add(lead=other, name="vip", by=rep_user)

    assert lead_tag_remove(lead=lead, name="Vip", by=rep_user) is True
    assert lead_tag_remove(lead=lead, name="VIP", by=rep_user) is False
    assert lead_tag_remove(lead=lead, name="never made", by=rep_user) is False

    assert tag_events(lead) == [("lead.tagged", lead.pk, rep_user.pk, "VIP"), ("lead.untagged", lead.pk, rep_user.pk, "VIP")]
    assert list(other.tags.values_list("name", flat=True)) == ["VIP"] and Tag.objects.count() == 1


@pytest.mark.parametrize("name, message", [("   ", "Write the tag"), ("x" * 51, r"at most 50 characters \(this one has 51\)")])
def test_an_empty_or_too_long_tag_is_refused_with_a_message_and_nothing_is_written(rep_user, name, message):
    lead = LeadFactory(owner=rep_user)
    with pytest.raises(ValidationError, match=message) as refused:
        lead_tag_add(lead=lead, name=name, by=rep_user)
    assert "tag" in refused.value.message_dict
    assert not Tag.objects.exists() and tag_events() == []


def test_a_rep_cannot_tag_another_reps_lead_but_a_marketer_can(rep_user, other_rep, marketer_user):
    lead = LeadFactory(owner=other_rep)
    with pytest.raises(PermissionDenied, match="owner, a marketer or a manager"):
        lead_tag_add(lead=lead, name="VIP", by=rep_user)
    lead_tag_add(lead=lead, name="VIP", by=marketer_user)
    with pytest.raises(PermissionDenied):
        lead_tag_remove(lead=lead, name="VIP", by=rep_user)
    assert tag_events() == [("lead.tagged", lead.pk, marketer_user.pk, "VIP")]


def test_tagging_many_leads_tags_each_once_in_batches_and_skips_those_that_have_it(marketer_user):
    leads = [LeadFactory() for _ in range(5)]
    lead_tag_add(lead=leads[0], name="Trade fair", by=marketer_user)

    added = leads_tag_add(lead_ids=[lead.pk for lead in leads], name="trade FAIR", by=marketer_user, batch_size=2)

    assert added == 4
    assert LeadTag.objects.filter(tag__key="trade fair").count() == 5
    assert sorted(lead_id for _, lead_id, _, _ in tag_events()) == sorted(lead.pk for lead in leads)
    assert leads_tag_add(lead_ids=[lead.pk for lead in leads], name="Trade fair", by=marketer_user) == 0


def test_a_rep_tagging_many_leads_among_them_another_reps_tags_none(rep_user, other_rep):
    mine, theirs = LeadFactory(owner=rep_user), LeadFactory(owner=other_rep)
    with pytest.raises(PermissionDenied):
        leads_tag_add(lead_ids=[mine.pk, theirs.pk], name="VIP", by=rep_user)
    assert not LeadTag.objects.exists() and tag_events() == []


def test_a_manager_tags_the_selected_leads_from_the_admin_list_and_filters_by_the_tag(client, manager_user):
    a, b, c = (LeadFactory(first_name=name) for name in ("Ann", "Bob", "Cid"))
    client.force_login(manager_user)
    url = reverse("admin:leads_lead_changelist")

    form = client.post(url, {"action": "tag_leads", "_selected_action": [a.pk, b.pk]})
    assert form.status_code == 200 and "Tag" in form.content.decode()
    done = client.post(url, {"action": "tag_leads", "_selected_action": [a.pk, b.pk], "apply": "1", "tag": "Spring fair"})

    assert done.status_code == 302
    assert set(LeadTag.objects.values_list("lead_id", flat=True)) == {a.pk, b.pk}
    tag = Tag.objects.get()
    listed = client.get(url, {"tags__id__exact": tag.pk}).content.decode()
    assert "Ann" in listed and "Bob" in listed and "Cid" not in listed
    page = client.get(reverse("admin:leads_lead_change", args=[a.pk])).content.decode()
    assert "Spring fair" in page


def test_the_admin_refuses_an_empty_tag_with_the_services_message(client, manager_user):
    lead = LeadFactory()
    client.force_login(manager_user)
    response = client.post(reverse("admin:leads_lead_changelist"),
                           {"action": "tag_leads", "_selected_action": [lead.pk], "apply": "1", "tag": "  "})
    assert response.status_code == 200 and "Write the tag" in response.content.decode()
    assert not LeadTag.objects.exists()


def test_merging_two_leads_moves_the_tags_the_kept_lead_lacks_and_undoing_moves_them_back(manager_user):
    from leads import services

    keep, merged = LeadFactory(), LeadFactory()
    lead_tag_add(lead=keep, name="VIP", by=manager_user)
    lead_tag_add(lead=merged, name="vip", by=manager_user)
    lead_tag_add(lead=merged, name="Webinar", by=manager_user)

    record = services.lead_merge(keep=keep, merge=merged, by=manager_user)
    assert sorted(keep.tags.values_list("name", flat=True)) == ["VIP", "Webinar"]

    services.lead_merge_undo(merge=record, by=manager_user)
    assert (list(keep.tags.values_list("name", flat=True)), sorted(merged.tags.values_list("name", flat=True))) == (
        ["VIP"], ["VIP", "Webinar"])
