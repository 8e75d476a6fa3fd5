"""The data migration that moves suppressions to address hashes."""

import importlib
from datetime import timedelta

import pytest
from django.apps import apps
from django.utils import timezone

from nurturing.models import Suppression, email_hash

pytestmark = pytest.mark.django_db

fill_hashes = importlib.import_module("nurturing.migrations.0003_suppression_by_hash").fill_hashes


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
    assert kept.email_hash == email_hash("ann@example.com")
    assert kept.email == "ann@example.com"
    assert kept.reason == Suppression.Reason.BOUNCED
    assert rows[other.pk].email_hash == email_hash("bob@example.com")


def test_an_erased_row_keeps_its_hash():
    erased = Suppression.objects.create(email="gone@example.com", reason=Suppression.Reason.ERASED)
    Suppression.objects.filter(pk=erased.pk).update(email="")

    fill_hashes(apps, None)

    assert Suppression.objects.get(pk=erased.pk).email_hash == email_hash("gone@example.com")
