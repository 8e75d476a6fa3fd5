"""Retargeting: an audience as Google Ads' and Meta's customer-match files (normalised, SHA-256-hashed emails and
phones with their country code), downloaded from the audience's page or fetched from a private feed address;
never a lead without consent or an address on the suppression list; each export in the event log."""

import csv
import hashlib
import io
from datetime import datetime
from datetime import timezone as dt_timezone

import pytest
import time_machine
from django.urls import reverse

from core.models import DomainEvent
from leads.models import Lead
from nurturing import retargeting, services
from nurturing.models import Audience, AudienceFeed, Suppression
from tests.factories import LeadFactory, SourceFactory

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=dt_timezone.utc)
CONSENT = NOW.replace(year=2026, month=10)
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen")]


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def marketer_client(client, marketer_user):
    client.force_login(marketer_user)
    return client


def h(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def read_csv(body: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body)))


@pytest.fixture
def audience():
    """Leads from the ads: one to export with every identifier, and one of each kind that must be left out."""
    ads = SourceFactory(slug="ads", name="Ads")
    people = {
        "ada": LeadFactory(source=ads, first_name="Zoë", last_name="O'Hara-Smith", email="Ada.Lovelace@GMAIL.com",
                           phone="+49 (30) 123-4567", consent_given_at=CONSENT),
        "phone_only": LeadFactory(source=ads, email="", phone="0044 20 7946 0958", consent_given_at=CONSENT),
        "national": LeadFactory(source=ads, email="", phone="030 1234567", consent_given_at=CONSENT),
        "no_consent": LeadFactory(source=ads, email="quiet@example.com", consent_given_at=None),
        "unsubscribed": LeadFactory(source=ads, email="gone@example.com", consent_given_at=CONSENT),
        "archived": LeadFactory(source=ads, email="old@example.com", consent_given_at=CONSENT),
        "elsewhere": LeadFactory(email="other@example.com", consent_given_at=CONSENT),
    }
    services.suppression_add(email="gone@example.com", reason=Suppression.Reason.UNSUBSCRIBED)
    Lead.objects.filter(pk=people["archived"].pk).update(archived_at=NOW)
    return Audience.objects.create(name="Clicked pricing", source=ads), people


def test_the_normalising_rules_of_each_platform():
    assert retargeting.google_email("  Ada.Love.Lace@GoogleMail.com ") == "adalovelace@googlemail.com"
    assert retargeting.google_email("ada.lovelace@example.com") == "ada.lovelace@example.com"
    assert retargeting.international_digits("+1 (415) 555-2671") == "14155552671"
    assert retargeting.international_digits("0049 30 1234567") == "49301234567"
    assert retargeting.international_digits("030 1234567") == ""  # no country code: it would match someone else
    assert retargeting.international_digits("+12") == ""
    assert retargeting.meta_name(" Zoë O'Hara-Smith ") == "zoëoharasmith"
    assert retargeting.sha256("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_the_google_ads_file_has_the_documented_columns_and_only_leads_that_may_be_advertised_to(audience):
    audience, people = audience
    counts = retargeting.ExportCounts()

    rows = list(retargeting.customer_match_rows(audience, "google", counts))

    assert rows[0] == ["Email", "Phone"]
    assert sorted(rows[1:]) == sorted([
        [h("adalovelace@gmail.com"), h("+49301234567")],
        ["", h("+442079460958")],
    ])
    assert counts.exported == 2
    assert counts.left_out == {"no email and no phone with its country code": 1, "no consent to marketing": 1,
                               "on the suppression list": 1}


def test_the_meta_file_hashes_phone_digits_and_names_as_meta_documents(audience):
    audience, people = audience

    rows = list(retargeting.customer_match_rows(audience, "meta"))

    assert rows[0] == ["email", "phone", "fn", "ln"]
    ada = next(row for row in rows[1:] if row[0])
    assert ada == [h("ada.lovelace@gmail.com"), h("49301234567"), h("zoë"), h("oharasmith")]


def test_a_large_audience_is_read_in_batches_and_every_lead_comes_once(monkeypatch):
    monkeypatch.setattr(retargeting, "BATCH", 3)
    for i in range(10):
        LeadFactory(email=f"lead{i}@example.com", consent_given_at=CONSENT)
    audience = Audience.objects.create(name="Everyone")

    rows = list(retargeting.customer_match_rows(audience, "google"))

    assert sorted(row[0] for row in rows[1:]) == sorted(h(f"lead{i}@example.com") for i in range(10))


def test_a_marketer_downloads_the_file_and_the_export_is_in_the_event_log(audience, marketer_client, marketer_user):
    audience, _ = audience
    page = marketer_client.get(reverse("admin:nurturing_audience_change", args=[audience.pk])).content.decode()
    assert "Download for Google Ads Customer Match" in page and "New feed for Meta custom audience" in page

    response = marketer_client.get(reverse("admin:nurturing_audience_customer_match", args=[audience.pk, "meta"]))

    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "no-store" in response["Cache-Control"]
    body = b"".join(response.streaming_content).decode()
    assert read_csv(body)[0] == ["email", "phone", "fn", "ln"] and len(read_csv(body)) == 3
    event = DomainEvent.objects.get(type="audience.exported")
    assert (event.actor_user, event.payload) == (marketer_user, {"platform": "meta", "via": "download"})


def test_a_marketer_sees_who_a_file_would_hold_and_why_the_rest_are_left_out(audience, marketer_client):
    audience, _ = audience
    page = marketer_client.get(reverse("admin:nurturing_audience_change", args=[audience.pk])).content.decode()
    assert "Count who a file would hold" in page

    response = marketer_client.get(reverse("admin:nurturing_audience_export_counts", args=[audience.pk]), follow=True)

    assert response.redirect_chain[-1][0] == reverse("admin:nurturing_audience_change", args=[audience.pk])
    said = [str(message) for message in response.context["messages"]]
    assert said == ["A file of this audience would hold 2 leads now; 3 left out: 1 no consent to marketing; "
                    "1 no email and no phone with its country code; 1 on the suppression list."]
    assert not DomainEvent.objects.filter(type="audience.exported").exists()  # counted, not exported


def test_a_rep_may_not_count_an_audience(audience, client, rep_user):
    audience, _ = audience
    client.force_login(rep_user)
    response = client.get(reverse("admin:nurturing_audience_export_counts", args=[audience.pk]))
    assert response.status_code in (302, 403)


def test_an_unknown_platform_is_not_found_and_nothing_is_exported(audience, marketer_client):
    audience, _ = audience
    response = marketer_client.get(reverse("admin:nurturing_audience_customer_match", args=[audience.pk, "myspace"]))
    assert response.status_code == 404
    assert not DomainEvent.objects.filter(type="audience.exported").exists()


def test_a_rep_may_not_export_an_audience(audience, client, rep_user):
    audience, _ = audience
    client.force_login(rep_user)
    response = client.get(reverse("admin:nurturing_audience_customer_match", args=[audience.pk, "google"]))
    assert response.status_code in (302, 403)
    assert not DomainEvent.objects.filter(type="audience.exported").exists()


def test_a_feed_gives_the_audience_as_it_is_at_each_fetch_until_revoked(audience, marketer_client, client):
    audience, people = audience
    made = marketer_client.post(reverse("admin:nurturing_audience_feed_create", args=[audience.pk]),
                                {"platform": "google"}, follow=True).content.decode()
    feed = AudienceFeed.objects.get()
    address = made.split("<code>")[1].split("</code>")[0]
    path = address.split("testserver", 1)[1]
    assert feed.token_hash not in address  # the address carries the token, the database only its hash

    first = read_csv(b"".join(client.get(path).streaming_content).decode())
    assert len(first) == 3
    LeadFactory(source=audience.source, email="new@example.com", consent_given_at=CONSENT)
    second = read_csv(b"".join(client.get(path).streaming_content).decode())
    assert [h("new@example.com"), ""] in second and len(second) == 4
    feed.refresh_from_db()
    assert feed.last_fetched_at == NOW
    fetches = DomainEvent.objects.filter(type="audience.exported")
    assert fetches.count() == 2 and fetches.first().payload == {"platform": "google", "via": "feed"}

    marketer_client.post(reverse("admin:nurturing_audience_feed_revoke", args=[audience.pk, feed.pk]))
    assert client.get(path).status_code == 404
    assert client.get("/feeds/audiences/not-a-token/").status_code == 404
    assert client.post(path).status_code == 404
    assert DomainEvent.objects.filter(type="audience_feed.revoked").count() == 1
