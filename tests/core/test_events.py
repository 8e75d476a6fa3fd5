"""The event log: rows appended in order, read by cursor, held back until they settle."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from core.events import Actor, EventType, cursor_advance, cursor_position, event_record, events_after, events_record
from core.models import ActorKind, DomainEvent

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


def test_an_unknown_type_is_refused_and_nothing_is_written():
    with pytest.raises(ValueError, match="Unknown event type 'lead.teleported': add it to core.events.EventType"):
        event_record("lead.teleported", actor=Actor.system("test"), lead_id=1)
    assert not DomainEvent.objects.exists()


def test_an_event_keeps_when_it_happened_apart_from_when_it_was_recorded(rep_user):
    with time_machine.travel(T0, tick=False):
        event = event_record(EventType.ACTIVITY_LOGGED, actor=Actor.of(rep_user), lead_id=7, at=T0 - timedelta(days=1))

    stored = DomainEvent.objects.get()
    assert (stored.pk, stored.occurred_at, stored.recorded_at) == (event.pk, T0 - timedelta(days=1), T0)
    assert (stored.actor_kind, stored.actor_user, stored.actor_ref) == (ActorKind.USER, rep_user, {})


def test_actors_other_than_users_are_named_by_ids():
    assert Actor.of(None) == Actor(ActorKind.SYSTEM)
    assert Actor.of(None, label="import") == Actor(ActorKind.SYSTEM, ref={"label": "import"})
    assert Actor.sequence(sequence_id=3, step_id=9) == Actor(ActorKind.SEQUENCE, ref={"sequence": 3, "step": 9})
    assert Actor.system("reaper") == Actor(ActorKind.SYSTEM, ref={"name": "reaper"})


def test_many_leads_get_one_row_each_in_batches(django_assert_num_queries):
    with django_assert_num_queries(3):
        assert events_record(EventType.LEAD_ARCHIVED, actor=Actor.system("test"), lead_ids=range(1, 6), batch_size=2) == 5
    assert list(DomainEvent.objects.values_list("lead_id", "type")) == [(n, "lead.archived") for n in range(1, 6)]


def test_a_reader_gets_events_in_order_after_its_cursor_once_they_settled(settings):
    settings.CRM_EVENT_SETTLE_SECONDS = 5
    with time_machine.travel(T0, tick=False):
        first = event_record(EventType.LEAD_CREATED, actor=Actor.system("test"), lead_id=1)
        second = event_record(EventType.TASK_CREATED, actor=Actor.system("test"), lead_id=1)
    with time_machine.travel(T0 + timedelta(seconds=3), tick=False):
        third = event_record(EventType.LEAD_CREATED, actor=Actor.system("test"), lead_id=2)

    with time_machine.travel(T0 + timedelta(seconds=5), tick=False):
        assert events_after(0) == [first, second]  # the third is younger than the settle time
        assert events_after(first.pk) == [second]
        assert events_after(0, types=["lead.created"]) == [first]
        assert events_after(0, limit=1) == [first]
    with time_machine.travel(T0 + timedelta(seconds=8), tick=False):
        assert events_after(second.pk) == [third]


def test_a_cursor_moves_forward_only():
    assert cursor_position("webhooks") == 0
    cursor_advance("webhooks", 10)
    cursor_advance("webhooks", 4)
    cursor_advance("scoring", 2)
    assert (cursor_position("webhooks"), cursor_position("scoring")) == (10, 2)


def test_managers_read_the_event_log_in_the_admin_and_nobody_writes_it(client, manager_user, rep_user):
    from django.urls import reverse

    from leads import services

    with time_machine.travel(T0, tick=False):
        lead = services.lead_create(email="ada@example.org", by=rep_user)
    event = DomainEvent.objects.get(lead_id=lead.pk)

    client.force_login(manager_user)
    page = client.get(reverse("admin:core_domainevent_changelist"), {"q": str(lead.pk)})
    assert page.status_code == 200
    html = page.content.decode()
    assert "lead.created" in html and f'href="{reverse("admin:leads_lead_change", args=[lead.pk])}">#{lead.pk}</a>' in html
    assert "rep1" in html
    assert client.get(reverse("admin:core_domainevent_change", args=[event.pk])).status_code == 200
    assert client.post(reverse("admin:core_domainevent_delete", args=[event.pk]), {"post": "yes"}).status_code == 403
    assert client.get(reverse("admin:core_domainevent_add")).status_code == 403

    client.force_login(rep_user)  # reps work in their own pages, not the admin
    assert client.get(reverse("admin:core_domainevent_changelist")).url.startswith("/admin/login/")
    assert DomainEvent.objects.filter(pk=event.pk).exists()


def test_pruning_archives_and_removes_old_events_and_keeps_what_a_reader_has_not_reached(tmp_path):
    import gzip
    import io
    import json

    from django.core.management import call_command

    def at(moment, lead_id):
        with time_machine.travel(moment, tick=False):
            return event_record(EventType.LEAD_CREATED, actor=Actor.system("test"), lead_id=lead_id)

    old = [at(T0 - timedelta(days=100), n) for n in (1, 2, 3)]
    recent = at(T0 - timedelta(days=10), 4)
    cursor_advance("webhooks", old[1].pk)
    archive = tmp_path / "events.jsonl.gz"

    with time_machine.travel(T0, tick=False):
        call_command("events_prune", days=90, archive=archive, batch_size=1, stdout=(out := io.StringIO()))
    assert list(DomainEvent.objects.values_list("pk", flat=True)) == [old[2].pk, recent.pk]
    assert "Removed 2 event(s)" in out.getvalue() and "cursor 'webhooks' at #" in out.getvalue()
    with gzip.open(archive, "rt") as lines:
        archived = [json.loads(line) for line in lines]
    assert [(row["id"], row["lead_id"], row["type"]) for row in archived] == [(e.pk, e.lead_id, "lead.created") for e in old[:2]]

    with time_machine.travel(T0, tick=False):
        call_command("events_prune", days=90, force=True, stdout=io.StringIO())
    assert list(DomainEvent.objects.values_list("pk", flat=True)) == [recent.pk]
