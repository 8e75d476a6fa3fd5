"""The pipeline board: columns, totals, filters, scope, moves through the services, paging, query counts."""

import re
from datetime import datetime
from datetime import timezone as dt_timezone

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from leads import services
from leads.models import Deal, DealStage, DealStageChange, Lead, StageChange
from tests.factories import CampaignFactory, LeadFactory, SourceFactory, lead_at

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=dt_timezone.utc)
pytestmark = pytest.mark.usefixtures("frozen")


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def manager_client(client, manager_user):
    client.force_login(manager_user)
    return client


def column(body: str, key: str) -> str:
    start = body.index(f'data-column="{key}"')
    end = body.find("<section", start)
    return body[start:end if end != -1 else None]


def text(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html)


def board(client, **params) -> str:
    response = client.get(reverse("workspace:board"), params)
    assert response.status_code == 200
    return response.content.decode()


def move(client, lead_or_deal, to_status, *, reason="", json=True):
    name = "workspace:board_deal_move" if isinstance(lead_or_deal, Deal) else "workspace:board_lead_move"
    headers = {"Accept": "application/json"} if json else {}
    return client.post(reverse(name, args=[lead_or_deal.pk]), {"to_status": to_status, "reason": reason}, headers=headers)


# --- Columns and cards ---------------------------------------------------------------------------


def test_the_board_shows_a_column_per_lead_stage_up_to_sql_then_per_deal_stage_with_counts_and_totals(
        rep_client, rep_user):
    LeadFactory(first_name="Nina", last_name="New", owner=rep_user)
    LeadFactory(first_name="Ned", last_name="New", owner=rep_user)
    lead_at("mql", first_name="Mia", last_name="Mql", owner=rep_user, by=rep_user)
    services.deal_open(lead=LeadFactory(first_name="Dee", last_name="Deal", owner=rep_user), value=1500,
                       currency="EUR", by=rep_user)
    services.deal_open(lead=LeadFactory(first_name="Don", last_name="Deal", owner=rep_user), value=500,
                       currency="EUR", by=rep_user)
    services.deal_open(lead=LeadFactory(first_name="Ula", last_name="Usd", owner=rep_user), value=700,
                       currency="USD", by=rep_user)

    body = board(rep_client)

    titles = ["New", "Contacted", "Nurturing", "MQL", "SQL", "Qualification", "Needs analysis", "Proposal",
              "Negotiation"]
    positions = [body.index(f'>{title}</h2>') for title in titles]
    assert positions == sorted(positions)
    assert "2 leads" in text(column(body, "lead-new")) and "Nina New" in column(body, "lead-new")
    assert "Mia Mql" in column(body, "lead-mql") and "1 lead" in text(column(body, "lead-mql"))
    qualification = column(body, f"deal-{DealStage.objects.get(name='Qualification').pk}")
    assert "3 deals" in text(qualification) and "2,000 EUR" in qualification and "700 USD" in qualification
    assert "Dee Deal" in qualification and "1,500 EUR" in qualification
    assert "Dee Deal" not in column(body, "lead-new")  # an opportunity shows as its deal


def test_a_card_shows_owner_days_in_stage_and_the_next_open_task(rep_client, rep_user):
    with time_machine.travel(datetime(2026, 11, 20, 9, 0, tzinfo=dt_timezone.utc), tick=False):
        lead = LeadFactory(first_name="Ada", last_name="Lovelace", owner=rep_user)
    rep_user.first_name, rep_user.last_name = "Rita", "Rep"
    rep_user.save()
    services.task_create(assignee=rep_user, title="Send the quote", due_at=datetime(2026, 11, 25, 9, 0, tzinfo=dt_timezone.utc),
                         lead=lead)
    services.task_create(assignee=rep_user, title="Later call", due_at=datetime(2026, 11, 28, 9, 0, tzinfo=dt_timezone.utc),
                         lead=lead)

    card = column(board(rep_client), "lead-new")

    assert "Rita Rep" in card and "4 days in stage" in card
    assert "Next: Send the quote" in card and "Later call" not in card


def test_hostile_names_are_escaped_on_the_board(rep_client, rep_user):
    LeadFactory(first_name="<script>alert(1)</script>", last_name="<b>x</b>", owner=rep_user)

    body = board(rep_client)

    assert "<script>alert(1)</script>" not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "<b>x</b>" not in body


# --- Scope and filters -----------------------------------------------------------------------


def test_a_rep_sees_their_own_and_unassigned_leads_but_not_another_reps(rep_client, rep_user, other_rep):
    LeadFactory(first_name="Mine", last_name="Lead", owner=rep_user)
    LeadFactory(first_name="Pool", last_name="Lead", owner=None)
    LeadFactory(first_name="Theirs", last_name="Lead", owner=other_rep)
    services.deal_open(lead=LeadFactory(first_name="Their", last_name="Deal", owner=other_rep), value=900, by=other_rep)

    body = board(rep_client)

    assert "Mine Lead" in body and "Pool Lead" in body
    assert "Theirs Lead" not in body and "Their Deal" not in body and "900" not in body
    assert "2 leads" in text(column(body, "lead-new"))


def test_the_filters_narrow_every_column_by_owner_source_and_campaign(manager_client, rep_user, other_rep):
    webinar, ads = SourceFactory(name="Webinar"), SourceFactory(name="Ads")
    spring = CampaignFactory(name="Spring")
    LeadFactory(first_name="Web", last_name="Rep", owner=rep_user, source=webinar, campaign=spring)
    LeadFactory(first_name="Ads", last_name="Rep", owner=rep_user, source=ads)
    LeadFactory(first_name="Web", last_name="Other", owner=other_rep, source=webinar)
    services.deal_open(lead=LeadFactory(first_name="Deal", last_name="Ads", owner=rep_user, source=ads), value=10,
                       by=rep_user)

    by_owner = board(manager_client, owner=rep_user.pk)
    by_source = board(manager_client, source=webinar.pk)
    by_campaign = board(manager_client, campaign=spring.pk)

    assert "Web Rep" in by_owner and "Ads Rep" in by_owner and "Deal Ads" in by_owner and "Web Other" not in by_owner
    assert "Web Rep" in by_source and "Web Other" in by_source and "Ads Rep" not in by_source
    assert "Deal Ads" not in by_source
    assert "Web Rep" in by_campaign and "Web Other" not in by_campaign and "Ads Rep" not in by_campaign


# --- Moves -------------------------------------------------------------------------------------


def test_a_dragged_lead_moves_through_the_stage_service_and_its_history_is_kept(rep_client, rep_user):
    lead = LeadFactory(owner=rep_user)

    response = move(rep_client, lead, "contacted")

    assert response.status_code == 200 and response.json()["ok"] is True
    lead.refresh_from_db()
    assert lead.status == "contacted"
    assert StageChange.objects.filter(lead=lead, to_status="contacted", changed_by=rep_user).exists()


def test_a_move_to_customer_is_refused_with_the_services_reason_and_nothing_changes(rep_client, rep_user):
    lead = LeadFactory(owner=rep_user)

    response = move(rep_client, lead, "customer")

    assert response.status_code == 400 and response.json()["ok"] is False
    assert "becomes a customer by converting" in response.json()["message"]
    lead.refresh_from_db()
    assert lead.status == "new" and not StageChange.objects.filter(lead=lead, to_status="customer").exists()


def test_moving_another_reps_lead_is_refused(rep_client, other_rep):
    lead = LeadFactory(owner=other_rep)

    response = move(rep_client, lead, "contacted")

    assert response.status_code == 404 and "No such lead" in response.json()["message"]
    lead.refresh_from_db()
    assert lead.status == "new"


def test_moving_a_pool_lead_the_rep_does_not_own_is_refused_with_a_reason(rep_client):
    lead = LeadFactory(owner=None)

    response = move(rep_client, lead, "contacted")

    assert response.status_code == 403 and response.json()["message"]
    assert Lead.objects.get(pk=lead.pk).status == "new"


def test_a_move_to_lost_needs_a_reason_and_succeeds_with_one(rep_client, rep_user):
    lead = LeadFactory(owner=rep_user)

    refused = move(rep_client, lead, "lost")
    assert refused.status_code == 400 and "reason" in refused.json()["message"].lower()
    assert Lead.objects.get(pk=lead.pk).status == "new"

    moved = move(rep_client, lead, "lost", reason="Chose a competitor")
    assert moved.status_code == 200
    lead.refresh_from_db()
    assert lead.status == "lost" and lead.lost_reason == "Chose a competitor"


def test_a_lead_dropped_on_a_deal_column_is_told_to_open_a_deal_first(rep_client, rep_user):
    lead = LeadFactory(owner=rep_user)
    stage = DealStage.objects.get(name="Proposal")

    response = move(rep_client, lead, f"deal-{stage.pk}")

    assert response.status_code == 400 and "open a deal on the lead page first" in response.json()["message"]
    assert Lead.objects.get(pk=lead.pk).status == "new"


def test_a_deal_card_moves_between_deal_stages_through_the_deal_stage_service(rep_client, rep_user):
    deal = services.deal_open(lead=LeadFactory(owner=rep_user), value=100, by=rep_user)
    proposal = DealStage.objects.get(name="Proposal")

    response = move(rep_client, deal, f"deal-{proposal.pk}")
    refused = move(rep_client, deal, "new")

    assert response.status_code == 200
    deal.refresh_from_db()
    assert deal.stage == proposal
    assert DealStageChange.objects.filter(deal=deal, to_stage=proposal, changed_by=rep_user).exists()
    assert refused.status_code == 400 and "deal stages only" in refused.json()["message"]


def test_without_javascript_a_move_is_a_form_post_and_a_redirect_back_with_the_message(rep_client, rep_user):
    lead = LeadFactory(owner=rep_user)

    response = move(rep_client, lead, "customer", json=False)
    followed = rep_client.get(response["Location"]).content.decode()

    assert response.status_code == 302 and response["Location"] == reverse("workspace:board")
    assert "becomes a customer by converting" in followed


def test_without_javascript_a_cards_move_link_opens_a_page_that_posts_the_move(rep_client, rep_user):
    lead = LeadFactory(first_name="Nora", last_name="Nojs", owner=rep_user)
    body = board(rep_client, source="")
    link = re.search(r'href="(/board/leads/%d/move/\?back=[^"]+)"' % lead.pk, body).group(1).replace("&amp;", "&")

    page = rep_client.get(link).content.decode()
    assert "Move Nora Nojs" in page and 'value="contacted"' in page and 'value="new"' not in page
    back = re.search(r'name="back" value="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert back.startswith("/board/")

    response = rep_client.post(reverse("workspace:board_lead_move", args=[lead.pk]),
                               {"to_status": "contacted", "back": back})
    assert response.status_code == 302 and response["Location"] == back
    assert Lead.objects.get(pk=lead.pk).status == "contacted"


def test_the_move_page_of_another_reps_lead_or_deal_is_not_found(rep_client, other_rep):
    lead = LeadFactory(owner=other_rep)
    deal = services.deal_open(lead=LeadFactory(owner=other_rep), value=100, by=other_rep)

    assert rep_client.get(reverse("workspace:board_lead_move", args=[lead.pk])).status_code == 404
    assert rep_client.get(reverse("workspace:board_deal_move", args=[deal.pk])).status_code == 404


def test_a_deals_move_page_offers_the_other_deal_stages(rep_client, rep_user):
    deal = services.deal_open(lead=LeadFactory(owner=rep_user), value=100, by=rep_user)
    page = rep_client.get(reverse("workspace:board_deal_move", args=[deal.pk])).content.decode()

    proposal = DealStage.objects.get(name="Proposal")
    assert f'value="deal-{proposal.pk}"' in page and f'value="deal-{deal.stage_id}"' not in page
    assert 'name="reason"' not in page


def test_the_heads_answer_every_columns_count_and_totals_under_the_filters(rep_client, rep_user):
    source = SourceFactory()
    LeadFactory(owner=rep_user, source=source)
    LeadFactory(owner=rep_user)
    services.deal_open(lead=LeadFactory(owner=rep_user, source=source), value=1500, currency="EUR", by=rep_user)
    services.deal_open(lead=LeadFactory(owner=rep_user, source=source), value=1000.5, currency="EUR", by=rep_user)
    qualification = DealStage.objects.get(name="Qualification")

    heads = rep_client.get(reverse("workspace:board_heads")).json()["columns"]
    assert heads["lead-new"] == "2 leads" and heads["lead-sql"] == "0 leads"
    assert heads[f"deal-{qualification.pk}"] == "2 deals · 2,500.50 EUR"
    narrowed = rep_client.get(reverse("workspace:board_heads"), {"source": source.pk}).json()["columns"]
    assert narrowed["lead-new"] == "1 lead"


def test_a_deal_card_shows_its_next_step_and_expected_close_and_opens_the_deal_on_the_lead_page(rep_client, rep_user):
    lead = LeadFactory(first_name="Dora", last_name="Deal", owner=rep_user)
    deal = services.deal_open(lead=lead, value=900, by=rep_user)
    Deal.objects.filter(pk=deal.pk).update(next_step="Send the proposal", expected_close_on=datetime(2026, 12, 18).date())

    card = column(board(rep_client), f"deal-{deal.stage_id}")
    assert "Next step: Send the proposal" in card and "closes 18 Dec" in card
    assert f'href="{reverse("workspace:lead_detail", args=[lead.pk])}#deal-{deal.pk}"' in card


# --- Paging and queries ------------------------------------------------------------------------


def _bulk_leads(owner, start, count, status="new"):
    Lead.objects.bulk_create(
        Lead(first_name=f"Bulk{i}", last_name="Lead", email=f"bulk{i}@example.com", owner=owner, status=status,
             stage_entered_at=NOW.replace(minute=0) if i % 2 else NOW)
        for i in range(start, start + count)
    )


def _names(html: str) -> list[str]:
    return re.findall(r">(Bulk\d+) Lead</a>", html)


def _next_page(html: str) -> str:
    """The Load more link's cursor ("" when the column has no more)."""
    more = html.split('class="board-more"')
    return more[1].split("after=")[1].split('"')[0] if len(more) > 1 else ""


def test_load_more_gives_the_next_page_of_a_column_and_every_card_once(rep_client, rep_user):
    _bulk_leads(rep_user, 0, 60)
    body = board(rep_client)
    seen = _names(column(body, "lead-new"))
    after, pages = _next_page(column(body, "lead-new")), 1
    url = reverse("workspace:board_column", args=["lead-new"])
    while after and pages < 5:
        page = rep_client.get(f"{url}?after={after}", headers={"HX-Request": "true"}).content.decode()
        seen += _names(page)
        after, pages = _next_page(page), pages + 1

    assert pages == 3
    assert len(seen) == 60 and len(set(seen)) == 60


def test_the_boards_first_screen_makes_the_same_queries_at_10_and_1000_leads(
        manager_client, rep_user, django_assert_max_num_queries):
    def queries():
        with CaptureQueriesContext(connection) as ctx:
            board(manager_client)
        return len(ctx.captured_queries)

    _bulk_leads(rep_user, 0, 10)
    at_10 = queries()
    for status in ("new", "contacted", "nurturing", "mql", "sql"):
        _bulk_leads(rep_user, 10 + 200 * ["new", "contacted", "nurturing", "mql", "sql"].index(status), 200, status)
    for i in range(3):
        services.deal_open(lead=LeadFactory(owner=rep_user), value=10 + i, by=rep_user)
    at_1000 = queries()

    assert at_10 == at_1000
    # session, user, groups, bell (2), filter choices (owners, sources, campaigns), deal stages, lead counts,
    # every lead column's cards, deal counts and totals, every deal column's cards
    with django_assert_max_num_queries(14):
        board(manager_client)


def test_more_deal_stages_add_no_query(manager_client, rep_user):
    def queries():
        with CaptureQueriesContext(connection) as ctx:
            board(manager_client)
        return len(ctx.captured_queries)

    services.deal_open(lead=LeadFactory(owner=rep_user), value=10, by=rep_user)
    before = queries()
    for i in range(4):
        DealStage.objects.create(name=f"Extra {i}", position=100 + i, probability=50)

    assert queries() == before
