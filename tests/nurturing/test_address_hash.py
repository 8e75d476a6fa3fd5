"""Suppressions and unsubscribe links hold a keyed hash of the address: guessing an address confirms nothing."""

import hashlib
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
import time_machine
from django.core import signing
from django.core.management import call_command
from django.urls import reverse

from nurturing import privacy, services
from nurturing.compose import unsubscribe_token, unsubscribe_token_read
from nurturing.models import Enrollment, Suppression
from tests.factories import LeadFactory, sequence_with_steps

pytestmark = pytest.mark.django_db

ADDRESS = "ann.example@example.org"
MONDAY_10_UTC = datetime(2026, 11, 23, 10, 0, tzinfo=dt_timezone.utc)


def plain_sha256(address: str) -> str:
    return hashlib.sha256(address.encode()).hexdigest()


def link_signed_before_the_key(*, lead_id: int, address: str) -> str:
    """An unsubscribe link as emails carried it before: the address's plain SHA-256, signed."""
    return signing.dumps({"l": lead_id, "h": plain_sha256(address)}, salt="crm.nurturing.unsubscribe", compress=True)


@pytest.fixture
def keys(settings):
    settings.CRM_EMAIL_HASH_KEY = "first-key-" + "x" * 40
    settings.CRM_EMAIL_HASH_KEYS_OLD = []
    return settings


def test_a_stored_hash_is_not_the_addresses_sha256_and_only_the_key_matches_it(keys):
    suppression = services.suppression_add(email=ADDRESS)
    Suppression.objects.filter(pk=suppression.pk).update(email="")
    suppression.refresh_from_db()

    assert plain_sha256(ADDRESS) not in suppression.email_hash
    assert services.email_is_suppressed(ADDRESS.upper())
    keys.CRM_EMAIL_HASH_KEY = "someone-elses-key-" + "y" * 40
    assert not services.email_is_suppressed(ADDRESS)


def test_an_erased_person_is_kept_only_as_a_keyed_hash_and_stays_suppressed(keys, manager_user):
    lead = LeadFactory(email=ADDRESS)

    privacy.person_erase(lead=lead, by=manager_user)

    [suppression] = Suppression.objects.values_list("email", "email_hash")
    assert suppression[0] == "" and plain_sha256(ADDRESS) not in suppression[1]
    assert services.email_is_suppressed(ADDRESS)
    with pytest.raises(Exception, match="suppressed"):
        services.enrollment_create(lead=LeadFactory(email=ADDRESS), sequence=sequence_with_steps())


def test_a_new_unsubscribe_link_does_not_carry_the_addresses_sha256(keys):
    token = unsubscribe_token(lead_id=1, email=ADDRESS)

    payload = signing.loads(token, salt="crm.nurturing.unsubscribe")
    assert plain_sha256(ADDRESS) not in str(payload)


def test_a_link_signed_before_the_key_still_unsubscribes_until_it_expires(client, keys, mailbox):
    keys.CRM_UNSUBSCRIBE_LINK_DAYS = 30
    with time_machine.travel(MONDAY_10_UTC, tick=False):
        lead = LeadFactory(email=ADDRESS)
        enrollment = services.enrollment_create(lead=lead, sequence=sequence_with_steps())
        token = link_signed_before_the_key(lead_id=lead.pk, address=ADDRESS)
    with time_machine.travel(MONDAY_10_UTC + timedelta(days=31), tick=False):
        expired = client.post(reverse("nurturing:unsubscribe", args=[token]))
    assert expired.status_code == 400 and not Suppression.objects.exists()

    with time_machine.travel(MONDAY_10_UTC + timedelta(days=29), tick=False):
        response = client.post(reverse("nurturing:unsubscribe", args=[token]))

    assert response.status_code == 200
    suppression = Suppression.objects.get()
    assert (suppression.email, suppression.reason) == (ADDRESS, Suppression.Reason.UNSUBSCRIBED)
    assert plain_sha256(ADDRESS) not in suppression.email_hash
    enrollment.refresh_from_db()
    assert enrollment.status == Enrollment.Status.EXITED


def test_a_link_signed_before_the_key_for_an_address_since_changed_suppresses_that_address(client, keys):
    from leads.services import lead_update

    lead = LeadFactory(email=ADDRESS)
    token = link_signed_before_the_key(lead_id=lead.pk, address=ADDRESS)
    lead_update(lead=lead, email="new.address@example.org")

    client.post(reverse("nurturing:unsubscribe", args=[token]))

    assert services.email_is_suppressed(ADDRESS) and not services.email_is_suppressed("new.address@example.org")
    assert plain_sha256(ADDRESS) not in Suppression.objects.get().email_hash


def test_after_a_key_rotation_old_hashes_match_until_rehashed_and_erased_ones_say_which_key_they_need(keys, capsys):
    services.suppression_add(email="kept@example.org")
    erased = services.suppression_add(email="gone@example.org")
    Suppression.objects.filter(pk=erased.pk).update(email="")
    token = unsubscribe_token(lead_id=LeadFactory(email="later@example.org").pk, email="later@example.org")
    first_key = keys.CRM_EMAIL_HASH_KEY

    keys.CRM_EMAIL_HASH_KEY, keys.CRM_EMAIL_HASH_KEYS_OLD = "second-key-" + "z" * 40, [first_key]
    assert services.email_is_suppressed("kept@example.org") and services.email_is_suppressed("gone@example.org")
    _, address_hash, _ = unsubscribe_token_read(token)
    services.suppression_add(address_hash=address_hash)  # a link sent under the first key, used now
    assert services.email_is_suppressed("later@example.org")

    call_command("rehash_suppressions")

    out = capsys.readouterr().out
    assert "Rewrote 1 suppression(s) under the current key." in out
    assert "2 erased address(es) stay under the old key" in out
    keys.CRM_EMAIL_HASH_KEYS_OLD = []
    assert services.email_is_suppressed("kept@example.org")
    assert not services.email_is_suppressed("gone@example.org")  # only with the old key, as the command said


def test_rehashing_merges_an_address_suppressed_under_both_keys_into_the_current_one(keys, capsys):
    old = services.suppression_add(email=ADDRESS, reason=Suppression.Reason.BOUNCED)
    keys.CRM_EMAIL_HASH_KEYS_OLD, keys.CRM_EMAIL_HASH_KEY = [keys.CRM_EMAIL_HASH_KEY], "second-key-" + "z" * 40
    current = Suppression.objects.create(email=ADDRESS, reason=Suppression.Reason.UNSUBSCRIBED)

    call_command("rehash_suppressions")

    assert "Removed 1 that were suppressed under the current key already." in capsys.readouterr().out
    assert list(Suppression.objects.values_list("pk", flat=True)) == [current.pk]
    assert not Suppression.objects.filter(pk=old.pk).exists()


def test_a_batch_after_a_key_rotation_still_skips_an_address_suppressed_under_the_old_key(keys, mailbox):
    from nurturing.claim import deliveries_claim
    from nurturing.dispatch import deliveries_send

    lead = LeadFactory(email=ADDRESS)
    with time_machine.travel(MONDAY_10_UTC, tick=False):
        services.enrollment_create(lead=lead, sequence=sequence_with_steps())
        services.suppression_add(email=ADDRESS)
        keys.CRM_EMAIL_HASH_KEYS_OLD, keys.CRM_EMAIL_HASH_KEY = [keys.CRM_EMAIL_HASH_KEY], "second-key-" + "z" * 40
        token, ids = deliveries_claim(limit=10)
        result = deliveries_send(ids=ids, token=token)

    assert (result.sent, result.skipped) == (0, 1) and mailbox == []


def test_the_plain_hash_is_the_sha256_of_the_trimmed_lower_cased_address_and_of_nothing_for_no_address():
    from nurturing.address_hash import unkeyed_hash

    assert unkeyed_hash("  Ann.Example@EXAMPLE.org \n") == plain_sha256(ADDRESS)
    assert unkeyed_hash("") == unkeyed_hash(None) == hashlib.sha256(b"").hexdigest()


def test_without_a_hash_key_of_its_own_the_key_is_made_from_the_secret_key(settings):
    from nurturing.address_hash import email_hash

    settings.CRM_EMAIL_HASH_KEY = ""
    settings.SECRET_KEY = "one-installations-secret-" + "a" * 40
    first = email_hash(ADDRESS)
    settings.SECRET_KEY = "another-installations-secret-" + "b" * 40
    second = email_hash(ADDRESS)
    settings.CRM_EMAIL_HASH_KEY = "a-hash-key-of-its-own-" + "c" * 40
    own = email_hash(ADDRESS)

    assert len({first, second, own}) == 3  # each secret makes its own key: one installation's hashes tell another nothing


def test_rewriting_hashes_goes_in_batches_keeps_the_oldest_holder_and_deletes_the_rest(keys, django_assert_num_queries):
    from nurturing.address_hash import email_hash, hashes_rewrite

    def suppressed(address):  # suppressed under a key since retired
        row = Suppression.objects.create(email=address, reason=Suppression.Reason.MANUAL)
        Suppression.objects.filter(pk=row.pk).update(email_hash=f"old:{row.pk}")
        return row

    rows = [suppressed(f"p{n}@example.org") for n in range(5)]
    holder = Suppression.objects.create(email="p4@example.org", reason=Suppression.Reason.BOUNCED)  # already current
    twins = [suppressed(f"P{n}@example.org ") for n in (0, 1, 2)]  # the same addresses, written another way
    rehashed = [(row.pk, email_hash(row.email)) for row in [*rows, *twins]]

    # Four lookups of two hashes each, two deletes and two updates of two rows each.
    with django_assert_num_queries(4 + 2 + 2):
        assert hashes_rewrite(Suppression.objects.all(), rehashed, batch_size=2) == (4, 4)

    left = dict(Suppression.objects.values_list("email_hash", "pk"))
    rewritten = {email_hash(f"p{n}@example.org"): row.pk for n, row in enumerate(rows[:4])}
    assert left == rewritten | {email_hash("p4@example.org"): holder.pk}
