"""How the reps' pages write amounts, people and moments: "12,500.50 EUR", "Tom Becker", "3 Mar 2026, 14:05"."""

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse

from leads import services
from leads.models import Deal, StageChange
from nurturing.models import Delivery
from nurturing.services import enrollment_create
from tests.factories import LeadFactory, lead_at, rep, sequence_with_steps

HTMX = {"HTTP_HX_REQUEST": "true"}
WRITE_IN_DIGITS = "Write the amount in digits, e.g. 1000 or 1000.50."


def page(client, lead) -> str:
    return client.get(reverse("workspace:lead_detail", args=[lead.pk])).content.decode()


def section(html: str, element_id: str) -> str:
    return html.split(f'id="{element_id}"')[1].split("</ul>")[0].split("</dd>")[0]


# --- Amounts ------------------------------------------------------------------------------------------


def test_amounts_show_with_thousands_separators_and_the_currency(rep_client, rep_user):
    lead = lead_at("sql", owner=rep_user)
    services.deal_open(lead=lead, value="1000", product="Upsell", by=rep_user)

    converted = rep_client.post(reverse("workspace:lead_action", args=[lead.pk, "convert"]),
                                {"deal_value": "12500.50", "currency": "EUR"}, **HTMX).content.decode()

    won = Deal.objects.get(lead=lead, status="won")
    assert f"Converted to a customer: deal #{won.pk} won, 12,500.50 EUR." in converted
    assert "12,500.50 EUR · Upsell" in section(converted, "deals")
    history = list(StageChange.objects.filter(lead=lead).order_by("changed_at", "pk").values_list("reason", flat=True))
    assert history[-2:] == ["Deal opened: Upsell: 1,000 EUR (Open)", f"Converted: deal #{won.pk} won, 12,500.50 EUR"]
    assert f"Converted: deal #{won.pk} won, 12,500.50 EUR" in section(converted, "timeline")


@time_machine.travel(datetime(2026, 11, 24, 10, 0, tzinfo=UTC), tick=False)
def test_a_rep_opens_a_deal_on_the_lead_page_with_its_close_date_and_next_step(rep_client, rep_user):
    lead = lead_at("sql", owner=rep_user)

    page = rep_client.post(reverse("workspace:lead_action", args=[lead.pk, "deal"]), {
        "value": "24000", "currency": "eur", "product": "Team plan", "expected_close_on": "2026-12-18",
        "next_step": "Send the proposal"}, **HTMX).content.decode()

    deal = Deal.objects.get(lead=lead)
    assert (deal.value, deal.currency, deal.next_step, str(deal.expected_close_on)) == (
        24000, "EUR", "Send the proposal", "2026-12-18")
    assert deal.stage.name == "Qualification"
    assert "Deal opened in Qualification: 24,000 EUR." in page
    deals = section(page, "deals")
    assert "24,000 EUR · Team plan" in deals and "closes 18 Dec 2026" in deals and "Next: Send the proposal" in deals
    lead.refresh_from_db()
    assert lead.status == "opportunity"


@time_machine.travel(datetime(2026, 11, 24, 10, 0, tzinfo=UTC), tick=False)
def test_a_won_deal_shows_when_it_was_won_not_a_chance_to_win(rep_client, rep_user):
    lead = lead_at("sql", owner=rep_user)
    services.lead_convert_to_customer(lead=lead, deal_value="900", by=rep_user)

    deals = section(rep_client.get(reverse("workspace:lead_detail", args=[lead.pk])).content.decode(), "deals")

    assert "% to win" not in deals and "Won 24 Nov 2026" in deals


@time_machine.travel(datetime(2026, 11, 24, 10, 0, tzinfo=UTC), tick=False)
@pytest.mark.parametrize("typed", ["1e3", "1E+3", "-5"])
def test_a_deal_value_not_in_digits_or_below_zero_is_refused_and_no_deal_is_opened(rep_client, rep_user, typed):
    lead = lead_at("sql", owner=rep_user)

    response = rep_client.post(reverse("workspace:lead_action", args=[lead.pk, "deal"]),
                               {"value": typed, "currency": "EUR"}, **HTMX)

    assert not Deal.objects.filter(lead=lead).exists()
    assert "Write the amount in digits" in response.content.decode() or "greater than or equal to 0" in response.content.decode()


@pytest.mark.parametrize("typed", ["1e3", "1E+3", "NaN", "Infinity", "-Infinity"])
def test_an_amount_not_written_in_digits_is_refused_by_the_convert_form(rep_client, rep_user, typed):
    lead = lead_at("sql", owner=rep_user)

    response = rep_client.post(reverse("workspace:lead_action", args=[lead.pk, "convert"]),
                               {"deal_value": typed, "currency": "EUR"}, **HTMX)

    assert response.status_code == 422 and WRITE_IN_DIGITS in response.content.decode()
    lead.refresh_from_db()
    assert lead.status == "sql" and not Deal.objects.exists()


# --- People ---------------------------------------------------------------------------------------------


def test_people_show_by_their_full_name_and_by_username_without_one(client, manager_user):
    tom = rep(username="tbecker", first_name="Tom", last_name="Becker")
    nameless = rep(username="jdoe", first_name="", last_name="")
    lead = LeadFactory(first_name="Ann", owner=tom)
    services.activity_log_call(lead=lead, by=tom, direction="outbound", outcome="connected")
    services.task_create(assignee=tom, title="Send the quote", due_at=datetime.now(UTC) + timedelta(days=1), lead=lead, by=tom)
    services.objection_log(lead=lead, by=manager_user, category="price", lead_words="Too dear")
    LeadFactory(first_name="Bea", owner=nameless)
    client.force_login(manager_user)

    body = page(client, lead)
    listed = client.get(reverse("workspace:lead_list"), {"scope": "all"}).content.decode()

    assert section(body, "lead-owner").startswith(">Tom Becker")
    assert "· Tom Becker</span>" in section(body, "open-tasks")
    timeline = section(body, "timeline")
    assert timeline.count("<br>Tom Becker</div>") == 3  # the call, its stage move, the task
    assert f"<br>{manager_user.get_full_name()}</div>" in timeline  # the objection
    assert "tbecker" not in body.split('id="lead-main"')[1]
    assert '<td class="hide-sm small">Tom Becker</td>' in listed and '<td class="hide-sm small">jdoe</td>' in listed


# --- Moments --------------------------------------------------------------------------------------------


@time_machine.travel(datetime(2026, 3, 3, 16, 5, tzinfo=UTC), tick=False)
def test_the_timeline_dates_are_for_people_in_the_accounts_time_zone(rep_client, rep_user, settings):
    settings.TIME_ZONE = "Europe/Berlin"  # UTC+1 in March
    lead = LeadFactory(owner=rep_user)
    services.activity_add_note(lead=lead, by=rep_user, body="Decision in March", occurred_at=datetime(2026, 3, 3, 13, 5, tzinfo=UTC))
    services.task_create(assignee=rep_user, title="Send quote", due_at=datetime(2026, 3, 5, 8, 0, tzinfo=UTC), lead=lead,
                         by=rep_user)
    enrollment = enrollment_create(lead=lead, sequence=sequence_with_steps(name="Welcome"))
    Delivery.objects.filter(enrollment=enrollment).update(status=Delivery.Status.SENT, subject="Hello",
                                                          sent_at=datetime(2026, 3, 3, 8, 30, tzinfo=UTC))

    timeline = section(page(rep_client, lead), "timeline")

    assert 'title="3\xa0hours ago">3 Mar 2026, 14:05</time>' in timeline  # the note
    assert "Task: Send quote (due 5 Mar 2026, 9:00)" in timeline
    assert ">3 Mar 2026, 9:30</time>" in timeline  # the email, read with the emails' own query
    readable = re.sub(r"<[^>]*>", "", timeline)  # what people read; the tags keep the ISO time for machines
    assert not re.search(r"\d{4}-\d\d-\d\d", readable)
