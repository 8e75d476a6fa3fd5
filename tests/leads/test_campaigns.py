"""Campaigns and their spend: the services' rules, their events, and the admin going through them."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse

from core.events import EventType
from core.models import DomainEvent
from leads import campaigns
from leads.models import Campaign, CampaignSpend
from tests.factories import CampaignFactory, LeadFactory, PersonaFactory, SourceFactory

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen(db):
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


def errors_of(exc_info) -> dict:
    return exc_info.value.message_dict


# --- Campaigns ------------------------------------------------------------------------------------------


def test_a_marketer_creates_a_campaign_and_the_event_names_them(marketer_user):
    source, persona = SourceFactory(), PersonaFactory()
    campaign = campaigns.campaign_create(
        by=marketer_user, name=" Spring webinar ", slug="spring-webinar", source=source, medium="email",
        persona=persona, starts_on=date(2026, 3, 1), ends_on=date(2026, 3, 31),
    )
    stored = Campaign.objects.get(pk=campaign.pk)
    assert (stored.name, stored.slug, stored.source, stored.persona) == ("Spring webinar", "spring-webinar", source, persona)
    event = DomainEvent.objects.get(type=EventType.CAMPAIGN_CREATED)
    assert (event.subject_type, event.subject_id, event.actor_user_id) == ("campaign", campaign.pk, marketer_user.pk)
    assert event.payload == {"slug": "spring-webinar"}


def test_a_rep_may_not_create_or_change_a_campaign(rep_user):
    with pytest.raises(PermissionDenied, match="marketer or a manager"):
        campaigns.campaign_create(by=rep_user, name="Mine", slug="mine")
    campaign = CampaignFactory()
    with pytest.raises(PermissionDenied):
        campaigns.campaign_update(campaign=campaign, by=rep_user, name="Renamed")
    assert not Campaign.objects.filter(slug="mine").exists()
    assert Campaign.objects.get(pk=campaign.pk).name != "Renamed"


@pytest.mark.parametrize(("fields", "field"), [
    ({"name": "", "slug": "a"}, "name"),
    ({"name": "A", "slug": ""}, "slug"),
    ({"name": "A", "slug": "has space"}, "slug"),
    ({"name": "A", "slug": "TAKEN"}, "slug"),
    ({"name": "A" * 201, "slug": "long"}, "name"),
    ({"name": "A", "slug": "a", "starts_on": date(2026, 5, 2), "ends_on": date(2026, 5, 1)}, "ends_on"),
])
def test_a_campaign_with_a_bad_field_is_refused_naming_it(manager_user, fields, field):
    CampaignFactory(slug="taken")
    with pytest.raises(ValidationError) as exc_info:
        campaigns.campaign_create(by=manager_user, **fields)
    assert field in errors_of(exc_info)
    assert Campaign.objects.count() == 1
    assert not DomainEvent.objects.filter(type=EventType.CAMPAIGN_CREATED).exists()


def test_updating_a_campaign_checks_the_result_and_records_what_changed(manager_user):
    campaign = CampaignFactory(slug="old", starts_on=date(2026, 1, 1))
    CampaignFactory(slug="other")
    with pytest.raises(ValidationError) as exc_info:
        campaigns.campaign_update(campaign=campaign, by=manager_user, ends_on=date(2025, 12, 31))
    assert "ends_on" in errors_of(exc_info)
    with pytest.raises(ValidationError) as exc_info:
        campaigns.campaign_update(campaign=campaign, by=manager_user, slug="Other")
    assert "slug" in errors_of(exc_info)
    campaigns.campaign_update(campaign=campaign, by=manager_user, slug="new", medium="cpc")
    assert (campaign.slug, Campaign.objects.get(pk=campaign.pk).slug) == ("new", "new")
    event = DomainEvent.objects.get(type=EventType.CAMPAIGN_UPDATED)
    assert event.payload == {"fields": ["medium", "slug"], "slug_before": "old"}


def test_an_update_that_changes_nothing_records_nothing(manager_user):
    campaign = CampaignFactory(name="Same")
    campaigns.campaign_update(campaign=campaign, by=manager_user, name="Same")
    assert not DomainEvent.objects.filter(type=EventType.CAMPAIGN_UPDATED).exists()


# --- Spend ------------------------------------------------------------------------------------------------


def test_spend_is_recorded_with_the_default_currency_and_an_event(marketer_user, settings):
    settings.CRM_DEFAULT_CURRENCY = "USD"
    campaign = CampaignFactory()
    spend = campaigns.spend_record(campaign=campaign, by=marketer_user, period_start=date(2026, 5, 1),
                                   period_end=date(2026, 5, 31), amount="1200.50")
    stored = CampaignSpend.objects.get(pk=spend.pk)
    assert (stored.amount, stored.currency) == (Decimal("1200.50"), "USD")
    event = DomainEvent.objects.get(type=EventType.CAMPAIGN_SPEND_RECORDED)
    assert event.payload == {"campaign": campaign.pk, "period_start": "2026-05-01", "period_end": "2026-05-31",
                             "amount": "1200.50", "currency": "USD"}
    assert event.actor_user_id == marketer_user.pk


@pytest.mark.parametrize(("fields", "field"), [
    ({"amount": "-1"}, "amount"),
    ({"amount": "1.234"}, "amount"),
    ({"amount": "lots"}, "amount"),
    ({"amount": "NaN"}, "amount"),
    ({"amount": "10000000000"}, "amount"),
    ({"currency": "EURO"}, "currency"),
    ({"currency": "€€€"}, "currency"),
    ({"period_end": date(2026, 4, 30)}, "period_end"),
    ({"period_start": None}, "period_start"),
])
def test_spend_with_a_bad_field_is_refused_naming_it(manager_user, fields, field):
    campaign = CampaignFactory()
    values = {"period_start": date(2026, 5, 1), "period_end": date(2026, 5, 31), "amount": "10", "currency": "EUR", **fields}
    with pytest.raises(ValidationError) as exc_info:
        campaigns.spend_record(campaign=campaign, by=manager_user, **values)
    assert field in errors_of(exc_info)
    assert not CampaignSpend.objects.exists()


@pytest.mark.parametrize(("start", "end"), [
    (date(2026, 5, 31), date(2026, 6, 10)),  # shares the last day
    (date(2026, 4, 20), date(2026, 5, 1)),  # shares the first day
    (date(2026, 5, 10), date(2026, 5, 12)),  # inside
    (date(2026, 4, 1), date(2026, 7, 1)),  # around
])
def test_overlapping_spend_periods_of_one_campaign_are_refused(manager_user, start, end):
    campaign = CampaignFactory()
    campaigns.spend_record(campaign=campaign, by=manager_user, period_start=date(2026, 5, 1),
                           period_end=date(2026, 5, 31), amount="100")
    with pytest.raises(ValidationError, match="counted twice") as exc_info:
        campaigns.spend_record(campaign=campaign, by=manager_user, period_start=start, period_end=end, amount="5")
    assert "period_start" in errors_of(exc_info)
    assert CampaignSpend.objects.count() == 1


def test_adjacent_periods_and_another_campaigns_periods_are_fine(manager_user):
    campaign, other = CampaignFactory(), CampaignFactory()
    for target, start, end in ((campaign, date(2026, 5, 1), date(2026, 5, 31)), (campaign, date(2026, 6, 1), date(2026, 6, 30)),
                               (other, date(2026, 5, 1), date(2026, 5, 31))):
        campaigns.spend_record(campaign=target, by=manager_user, period_start=start, period_end=end, amount="1")
    assert CampaignSpend.objects.count() == 3


def test_a_spend_update_is_checked_against_the_other_rows_but_not_itself(manager_user):
    campaign = CampaignFactory()
    may = campaigns.spend_record(campaign=campaign, by=manager_user, period_start=date(2026, 5, 1),
                                 period_end=date(2026, 5, 31), amount="100")
    campaigns.spend_record(campaign=campaign, by=manager_user, period_start=date(2026, 6, 1),
                           period_end=date(2026, 6, 30), amount="100")
    campaigns.spend_update(spend=may, by=manager_user, period_end=date(2026, 5, 30), amount="90")
    assert (may.period_end, may.amount) == (date(2026, 5, 30), Decimal("90"))
    with pytest.raises(ValidationError, match="counted twice"):
        campaigns.spend_update(spend=may, by=manager_user, period_end=date(2026, 6, 1))
    assert CampaignSpend.objects.get(pk=may.pk).period_end == date(2026, 5, 30)
    event = DomainEvent.objects.get(type=EventType.CAMPAIGN_SPEND_UPDATED)
    assert event.payload["fields"] == ["amount", "period_end"]


def test_deleting_spend_keeps_what_it_said_in_the_event(manager_user, rep_user):
    spend = campaigns.spend_record(campaign=CampaignFactory(), by=manager_user, period_start=date(2026, 5, 1),
                                   period_end=date(2026, 5, 31), amount="100")
    with pytest.raises(PermissionDenied):
        campaigns.spend_delete(spend=spend, by=rep_user)
    campaigns.spend_delete(spend=spend, by=manager_user)
    assert not CampaignSpend.objects.exists()
    event = DomainEvent.objects.get(type=EventType.CAMPAIGN_SPEND_DELETED)
    assert (event.subject_id, event.payload["amount"]) == (spend.pk, "100.00")


def test_a_rep_may_not_record_spend(rep_user):
    with pytest.raises(PermissionDenied):
        campaigns.spend_record(campaign=CampaignFactory(), by=rep_user, period_start=date(2026, 5, 1),
                               period_end=date(2026, 5, 2), amount="1")
    assert not CampaignSpend.objects.exists()


def test_deleting_a_campaign_records_its_spend_rows_and_itself_as_deleted(manager_user, rep_user):
    campaign = CampaignFactory(slug="oops")
    spend = campaigns.spend_record(campaign=campaign, by=manager_user, period_start=date(2026, 5, 1),
                                   period_end=date(2026, 5, 31), amount="100")
    with pytest.raises(PermissionDenied):
        campaigns.campaign_delete(campaign=campaign, by=rep_user)
    campaigns.campaign_delete(campaign=campaign, by=manager_user)
    assert not Campaign.objects.filter(pk=campaign.pk).exists() and not CampaignSpend.objects.exists()
    deleted = list(DomainEvent.objects.filter(type__in=[EventType.CAMPAIGN_SPEND_DELETED, EventType.CAMPAIGN_DELETED])
                   .order_by("id").values_list("type", "subject_id"))
    assert deleted == [(EventType.CAMPAIGN_SPEND_DELETED, spend.pk), (EventType.CAMPAIGN_DELETED, campaign.pk)]


def test_a_campaign_that_leads_came_from_is_kept(manager_user):
    campaign = CampaignFactory()
    LeadFactory(campaign=campaign)
    with pytest.raises(ValidationError, match="1 lead"):
        campaigns.campaign_delete(campaign=campaign, by=manager_user)
    assert Campaign.objects.filter(pk=campaign.pk).exists()


# --- The admin ------------------------------------------------------------------------------------------


@pytest.fixture
def manager_client(client, manager_user):
    client.force_login(manager_user)
    return client


def spend_rows(*rows, initial=0, ids=()):
    data = {"spends-TOTAL_FORMS": str(len(rows)), "spends-INITIAL_FORMS": str(initial),
            "spends-MIN_NUM_FORMS": "0", "spends-MAX_NUM_FORMS": "1000"}
    for index, (start, end, amount) in enumerate(rows):
        data.update({f"spends-{index}-period_start": start, f"spends-{index}-period_end": end,
                     f"spends-{index}-amount": amount, f"spends-{index}-currency": "EUR"})
        if index < len(ids):
            data[f"spends-{index}-id"] = str(ids[index])
    return data


def campaign_form(**fields):
    return {"name": "Autumn", "slug": "autumn", "medium": "", "starts_on": "", "ends_on": "", **fields}


def test_adding_a_campaign_with_spend_in_the_admin_goes_through_the_services(manager_client, manager_user):
    data = {**campaign_form(), **spend_rows(("2026-05-01", "2026-05-31", "100"), ("2026-06-01", "2026-06-30", "50"))}
    response = manager_client.post(reverse("admin:leads_campaign_add"), data)
    assert response.status_code == 302, response.context["errors"] if response.context else ""
    campaign = Campaign.objects.get(slug="autumn")
    assert sorted(campaign.spends.values_list("amount", flat=True)) == [Decimal("50"), Decimal("100")]
    types = list(DomainEvent.objects.order_by("id").values_list("type", "actor_user_id"))
    assert types == [(EventType.CAMPAIGN_CREATED, manager_user.pk), (EventType.CAMPAIGN_SPEND_RECORDED, manager_user.pk),
                     (EventType.CAMPAIGN_SPEND_RECORDED, manager_user.pk)]


def test_the_admin_refuses_overlapping_rows_and_a_slug_taken_in_another_case(manager_client):
    CampaignFactory(slug="autumn")
    data = {**campaign_form(slug="AUTUMN"), **spend_rows(("2026-05-01", "2026-05-31", "1"), ("2026-05-20", "2026-06-30", "1"))}
    response = manager_client.post(reverse("admin:leads_campaign_add"), data)
    assert response.status_code == 200
    assert "slug" in response.context["adminform"].form.errors
    assert "counted twice" in str(response.context["inline_admin_formsets"][0].formset.non_form_errors())
    assert Campaign.objects.count() == 1 and not CampaignSpend.objects.exists()


def test_changing_and_deleting_spend_in_the_admin_goes_through_the_services(manager_client, manager_user):
    campaign = CampaignFactory(name="Autumn", slug="autumn")
    may = campaigns.spend_record(campaign=campaign, by=manager_user, period_start=date(2026, 5, 1),
                                 period_end=date(2026, 5, 31), amount="100")
    june = campaigns.spend_record(campaign=campaign, by=manager_user, period_start=date(2026, 6, 1),
                                  period_end=date(2026, 6, 30), amount="100")
    data = {**campaign_form(), **spend_rows(("2026-05-01", "2026-05-31", "80"), ("2026-06-01", "2026-06-30", "100"),
                                            initial=2, ids=(may.pk, june.pk))}
    data["spends-1-DELETE"] = "on"
    data.update({"spends-0-campaign": str(campaign.pk), "spends-1-campaign": str(campaign.pk)})
    response = manager_client.post(reverse("admin:leads_campaign_change", args=[campaign.pk]), data)
    assert response.status_code == 302, response.context["errors"] if response.context else ""
    assert list(campaign.spends.values_list("pk", "amount")) == [(may.pk, Decimal("80"))]
    assert DomainEvent.objects.filter(type=EventType.CAMPAIGN_SPEND_UPDATED).count() == 1
    assert DomainEvent.objects.filter(type=EventType.CAMPAIGN_SPEND_DELETED, subject_id=june.pk).count() == 1


def test_deleting_a_campaign_in_the_admin_goes_through_the_service(manager_client, manager_user):
    campaign = CampaignFactory()
    campaigns.spend_record(campaign=campaign, by=manager_user, period_start=date(2026, 5, 1),
                           period_end=date(2026, 5, 31), amount="100")
    response = manager_client.post(reverse("admin:leads_campaign_delete", args=[campaign.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not Campaign.objects.filter(pk=campaign.pk).exists()
    assert DomainEvent.objects.filter(type=EventType.CAMPAIGN_DELETED, subject_id=campaign.pk).count() == 1
    assert DomainEvent.objects.filter(type=EventType.CAMPAIGN_SPEND_DELETED).count() == 1


# --- Racing -----------------------------------------------------------------------------------------------


@pytest.mark.integration
def test_two_overlapping_spend_rows_recorded_at_once_make_one(postgres_db):
    # On PostgreSQL, where the two really run at once: the lock on the campaign makes the second see the first.
    # Recorded by the system (no user): the role groups may have been flushed by an earlier transactional test.
    import threading

    from django.db import connection

    campaign = CampaignFactory()
    barrier, outcomes = threading.Barrier(2), []

    def record(start):
        try:
            barrier.wait()
            campaigns.spend_record(campaign=campaign, by=None, period_start=start, period_end=date(2026, 5, 31), amount="1")
            outcomes.append("recorded")
        except ValidationError:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=record, args=(start,)) for start in (date(2026, 5, 1), date(2026, 5, 15))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["recorded", "refused"]
    assert CampaignSpend.objects.filter(campaign=campaign).count() == 1


def test_the_database_refuses_a_second_slug_differing_only_in_case(db):
    Campaign.objects.create(name="Spring", slug="spring")
    with pytest.raises(IntegrityError), transaction.atomic():
        Campaign.objects.create(name="Spring again", slug="Spring")  # past the service, as a race would be
    assert Campaign.objects.count() == 1
