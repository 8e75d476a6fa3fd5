"""Adding a suppression: what is written, what is kept, and what is refused."""

import pytest
from django.core.exceptions import ValidationError

from nurturing import services
from nurturing.address_hash import email_hash
from nurturing.models import Suppression

pytestmark = pytest.mark.django_db


@pytest.fixture
def keys(settings):
    settings.CRM_EMAIL_HASH_KEY = "current-key-" + "x" * 40
    settings.CRM_EMAIL_HASH_KEYS_OLD = []
    return settings


def row(suppression):
    fresh = Suppression.objects.get(pk=suppression.pk)
    return fresh.email, fresh.email_hash, fresh.reason, fresh.source, fresh.created_by


@pytest.mark.parametrize("email", ["", "   "])
def test_neither_an_address_nor_a_hash_is_refused_by_the_field(email):
    with pytest.raises(ValidationError) as refused:
        services.suppression_add(email=email)
    assert refused.value.message_dict == {"email": ["Enter the address to suppress."]}
    assert not Suppression.objects.exists()


def test_an_address_is_written_trimmed_lower_cased_and_hashed_by_hand_by_default(keys):
    suppression = services.suppression_add(email="  Ada@Example.ORG ")

    assert row(suppression) == ("ada@example.org", email_hash("ada@example.org"), Suppression.Reason.MANUAL, "", None)
    assert services.email_is_suppressed("ADA@example.org ") and not services.email_is_suppressed("bob@example.org")


def test_the_reason_the_source_and_who_added_it_are_kept_the_source_cut_to_what_the_field_holds(keys, manager_user):
    suppression = services.suppression_add(
        email="ada@example.org", reason=Suppression.Reason.COMPLAINED, source="s" * 199 + "é" + "t" * 50, by=manager_user
    )
    assert row(suppression) == (
        "ada@example.org", email_hash("ada@example.org"), Suppression.Reason.COMPLAINED, "s" * 199 + "é", manager_user,
    )


def test_an_address_already_suppressed_under_an_old_key_keeps_its_suppression(keys):
    first = services.suppression_add(email="ada@example.org", reason=Suppression.Reason.BOUNCED, source="postmark")
    keys.CRM_EMAIL_HASH_KEYS_OLD, keys.CRM_EMAIL_HASH_KEY = [keys.CRM_EMAIL_HASH_KEY], "next-key-" + "y" * 40

    again = services.suppression_add(email="Ada@example.org", reason=Suppression.Reason.UNSUBSCRIBED, source="link")

    assert again.pk == first.pk and Suppression.objects.count() == 1
    assert row(again)[2:4] == (Suppression.Reason.BOUNCED, "postmark")  # why and whence it was first suppressed


def test_a_hash_alone_is_written_without_an_address_and_the_same_hash_again_adds_nothing(keys):
    hashed = email_hash("erased@example.org")

    first = services.suppression_add(address_hash=hashed, reason=Suppression.Reason.UNSUBSCRIBED, source="link")
    again = services.suppression_add(address_hash=hashed, reason=Suppression.Reason.MANUAL, source="by hand")

    assert again.pk == first.pk and Suppression.objects.count() == 1
    assert row(first) == ("", hashed, Suppression.Reason.UNSUBSCRIBED, "link", None)
    assert services.email_is_suppressed("erased@example.org")


def test_an_address_given_with_a_hash_is_suppressed_by_its_address(keys):
    suppression = services.suppression_add(email="ada@example.org", address_hash=email_hash("someone-else@example.org"))

    assert row(suppression)[:2] == ("ada@example.org", email_hash("ada@example.org"))
    assert not services.email_is_suppressed("someone-else@example.org")


def test_a_suppression_is_corrected_through_the_service_never_onto_an_address_already_suppressed(keys, manager_user):
    first = services.suppression_add(email="ada@example.org", source="form")
    other = services.suppression_add(email="bob@example.org")

    with pytest.raises(ValidationError) as refused:
        services.suppression_update(suppression=other, by=manager_user, email=" ADA@example.org")
    assert refused.value.message_dict["email"][0].startswith("This address is already suppressed (Added by hand, since ")

    services.suppression_update(suppression=first, by=manager_user, reason=Suppression.Reason.COMPLAINED, source="x" * 300)
    assert row(first)[2:4] == (Suppression.Reason.COMPLAINED, "x" * 200)
    services.suppression_update(suppression=other, by=manager_user, email="Bob.Smith@example.org ")
    assert row(other)[:2] == ("bob.smith@example.org", email_hash("bob.smith@example.org"))


def test_an_erased_persons_suppression_keeps_its_hash(keys, manager_user):
    erased = services.suppression_add(address_hash=email_hash("gone@example.org"))
    with pytest.raises(ValidationError) as refused:
        services.suppression_update(suppression=erased, by=manager_user, email="someone@example.org")
    assert refused.value.message_dict == {
        "email": ["The person was erased: their address is kept only as a hash and cannot change."]
    }
    assert row(erased)[:2] == ("", email_hash("gone@example.org"))
