"""The data migrations that move suppressions to address hashes, then to keyed hashes."""

import importlib
from datetime import timedelta

import pytest
from django.apps import apps
from django.utils import timezone

from nurturing.address_hash import email_hash, unkeyed_hash
from nurturing.models import Suppression

pytestmark = pytest.mark.django_db

fill_hashes = importlib.import_module("nurturing.migrations.0003_suppression_by_hash").fill_hashes
keyed_migration = importlib.import_module("nurturing.migrations.0006_suppression_keyed_hash")


def test_addresses_differing_only_in_case_are_merged_into_the_oldest_row():
    now = timezone.now()
    # bulk_create skips save(): the addresses stay as typed, with placeholder hashes (the column is unique).
    newer, oldest, other = Suppression.objects.bulk_create([
        Suppression(email="ann@example.com", email_hash="x1", reason=Suppression.Reason.MANUAL, created_at=now),
        Suppression(email=" Ann@Example.COM", email_hash="x2", reason=Suppression.Reason.BOUNCED, created_at=now - timedelta(days=3)),
        Suppression(email="Bob@Example.com", email_hash="x3", created_at=now),
    ])

    fill_hashes(apps, None)

    rows = {row.pk: row for row in Suppression.objects.all()}
    assert set(rows) == {oldest.pk, other.pk}
    kept = rows[oldest.pk]
    assert kept.email_hash == unkeyed_hash("ann@example.com")
    assert kept.email == "ann@example.com"
    assert kept.reason == Suppression.Reason.BOUNCED
    assert rows[other.pk].email_hash == unkeyed_hash("bob@example.com")


def test_an_erased_row_keeps_its_hash():
    erased = Suppression.objects.create(email="gone@example.com", reason=Suppression.Reason.ERASED)
    Suppression.objects.filter(pk=erased.pk).update(email="", email_hash=unkeyed_hash("gone@example.com"))

    fill_hashes(apps, None)

    assert Suppression.objects.get(pk=erased.pk).email_hash == unkeyed_hash("gone@example.com")


def plain_sha256_rows():
    """Suppressions as they were stored before the key: plain SHA-256 hashes, erased ones without their address."""
    now = timezone.now()
    return Suppression.objects.bulk_create([
        Suppression(email="ann@example.com", email_hash=unkeyed_hash("ann@example.com"), created_at=now),
        Suppression(email="", email_hash=unkeyed_hash("gone@example.com"), reason=Suppression.Reason.ERASED, created_at=now),
    ])


def test_every_plain_hash_is_keyed_erased_people_included():
    kept, erased = plain_sha256_rows()

    keyed_migration.key_hashes(apps, None)

    rows = dict(Suppression.objects.values_list("pk", "email_hash"))
    assert rows == {kept.pk: email_hash("ann@example.com"), erased.pk: email_hash("gone@example.com")}
    assert not Suppression.objects.filter(email_hash__in=[unkeyed_hash("ann@example.com"), unkeyed_hash("gone@example.com")]).exists()


def test_an_erased_person_stays_suppressed_after_the_hashes_are_keyed():
    from nurturing import services

    plain_sha256_rows()
    keyed_migration.key_hashes(apps, None)

    assert services.email_is_suppressed(" Gone@Example.com")
    assert not services.email_is_suppressed("someone-else@example.com")


def test_keying_the_hashes_can_be_undone_only_while_every_row_holds_its_address():
    from django.db.migrations.exceptions import IrreversibleError

    kept, erased = plain_sha256_rows()
    keyed_migration.key_hashes(apps, None)

    with pytest.raises(IrreversibleError, match="1 suppression"):
        keyed_migration.unkey_hashes(apps, None)
    erased.delete()
    keyed_migration.unkey_hashes(apps, None)
    assert Suppression.objects.get().email_hash == unkeyed_hash("ann@example.com")


def test_stage_moves_written_by_name_are_linked_to_their_sequence_and_step_by_id():
    from leads.models import StageChange
    from tests.factories import LeadFactory, sequence_with_steps

    link = importlib.import_module("nurturing.migrations.0008_stage_changes_name_their_step_by_id").link
    welcome, welcome_back = sequence_with_steps({}, {}, name="Welcome"), sequence_with_steps({}, name="Welcome back")
    lead = LeadFactory()
    w1, w2 = welcome.steps.order_by("position")
    [back1] = welcome_back.steps.all()

    def move(actor):
        return StageChange.objects.create(lead=lead, from_status="new", to_status="nurturing", actor=actor).pk

    rows = {
        move("sequence Welcome step 2"): (welcome.pk, w2.pk),
        move("sequence Welcome step 1, event #12 (clicked /pricing)"): (welcome.pk, w1.pk),
        move("sequence Welcome back step 1"): (welcome_back.pk, back1.pk),
        move("sequence Welcome step 9"): (None, None),  # no such step
        move("sequence Renamed since step 1"): (None, None),
        move("Lead scoring"): (None, None),
    }

    link(apps, None)

    linked = dict(StageChange.objects.filter(pk__in=rows).values_list("pk", "source_sequence_id"))
    steps = dict(StageChange.objects.filter(pk__in=rows).values_list("pk", "source_step_id"))
    assert {pk: (linked[pk], steps[pk]) for pk in rows} == rows
