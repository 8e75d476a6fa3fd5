"""core.inserts.rows_insert writes the rows bulk_create would, from dicts, in one statement per batch."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.events import Actor, EventType, events_record_each
from core.inserts import rows_insert
from core.models import ActorKind, DomainEvent
from nurturing.models import Suppression

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


def _stored(model, **filters):
    fields = [f.attname for f in model._meta.concrete_fields if not f.primary_key]
    return [{name: getattr(row, name) for name in fields} for row in model.objects.filter(**filters).order_by("pk")]


def test_rows_get_the_same_defaults_and_values_as_bulk_create(rep_user):
    rows = [
        {"type": "lead.created", "lead_id": 1, "actor_kind": ActorKind.SYSTEM},
        {"type": "lead.created", "lead_id": 2, "actor_kind": ActorKind.USER, "actor_user_id": rep_user.pk,
         "payload": {"owner": 3, "name": "<script>alert(1)</script> Zoë"}, "occurred_at": T0 - timedelta(days=2)},
    ]
    with time_machine.travel(T0, tick=False):
        assert rows_insert(DomainEvent, [{**row, "subject_type": "ours"} for row in rows]) == 2
        DomainEvent.objects.bulk_create(DomainEvent(**{**row, "subject_type": "django"}) for row in rows)

    ours, djangos = _stored(DomainEvent, subject_type="ours"), _stored(DomainEvent, subject_type="django")
    assert [{**row, "subject_type": ""} for row in ours] == [{**row, "subject_type": ""} for row in djangos]
    assert ours[0]["occurred_at"] == ours[0]["recorded_at"] == T0  # callable defaults: the time of the call
    assert ours[1]["payload"] == {"owner": 3, "name": "<script>alert(1)</script> Zoë"}


def test_a_row_a_unique_constraint_refuses_is_left_out_and_not_counted():
    assert rows_insert(Suppression, [{"email": "ada@example.org", "email_hash": "h1"}]) == 1
    inserted = rows_insert(Suppression, [{"email": "ada@example.org", "email_hash": "h1"},
                                         {"email": "bob@example.org", "email_hash": "h2"}], ignore_conflicts=True)
    assert inserted == 1
    assert sorted(Suppression.objects.values_list("email_hash", "email")) == [("h1", "ada@example.org"), ("h2", "bob@example.org")]


def test_one_statement_per_batch():
    rows = [{"type": "lead.created", "lead_id": n, "actor_kind": ActorKind.SYSTEM} for n in range(5)]
    with CaptureQueriesContext(connection) as queries:
        assert rows_insert(DomainEvent, iter(rows), batch_size=2) == 5
    assert len([q for q in queries if q["sql"].lstrip().upper().startswith("INSERT")]) == 3
    assert sorted(DomainEvent.objects.values_list("lead_id", flat=True)) == [0, 1, 2, 3, 4]
    with CaptureQueriesContext(connection) as queries:
        assert rows_insert(DomainEvent, []) == 0
    assert not queries


def test_a_field_the_model_does_not_have_is_refused_and_nothing_is_written():
    with pytest.raises(ValueError, match="core.DomainEvent has no field colour"):
        rows_insert(DomainEvent, [{"type": "lead.created", "lead_id": 1, "actor_kind": ActorKind.SYSTEM, "colour": "red"}])
    assert not DomainEvent.objects.exists()


def test_events_record_each_writes_each_rows_actor_and_refuses_an_unknown_key(rep_user):
    with time_machine.travel(T0, tick=False):
        written = events_record_each(EventType.EMAIL_SENT, rows=[
            {"lead_id": 1, "subject_type": "delivery", "subject_id": 9, "actor": Actor.sequence(sequence_id=4, step_id=5),
             "payload": {"step": 5}, "at": T0 - timedelta(minutes=1)},
            {"lead_id": 2, "actor": Actor.of(rep_user)},
        ])
    assert written == 2
    first, second = DomainEvent.objects.order_by("pk")
    assert (first.type, first.lead_id, first.subject_type, first.subject_id, first.actor_kind, first.actor_ref,
            first.payload, first.occurred_at, first.recorded_at) == (
        EventType.EMAIL_SENT, 1, "delivery", 9, ActorKind.SEQUENCE, {"sequence": 4, "step": 5}, {"step": 5},
        T0 - timedelta(minutes=1), T0)
    assert (second.actor_user, second.payload, second.subject_type, second.occurred_at) == (rep_user, {}, "", T0)
    with pytest.raises(ValueError, match="not subject"):
        events_record_each(EventType.EMAIL_SENT, actor=Actor.system("t"), rows=[{"lead_id": 3, "subject": first}])
    with pytest.raises(ValueError, match="needs an actor"):
        events_record_each(EventType.EMAIL_SENT, rows=[{"lead_id": 3}])
    assert DomainEvent.objects.count() == 2
