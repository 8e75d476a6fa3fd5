from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core.policy import access_for
from leads import services
from leads.models import Company, Deal, Lead
from tests.factories import CompanyFactory, LeadFactory
from workspace import search

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def frozen_clock():
    with time_machine.travel("2026-11-30 10:00:00Z", tick=False):
        yield

URL = reverse("workspace:search")


def partial(client, text):
    response = client.get(URL, {"q": text, "partial": "1"})
    assert response.status_code == 200
    return response.content.decode()


def test_a_lead_is_found_by_name_email_phone_and_company(rep_user):
    company = CompanyFactory(name="Globex Industries", domain="globex.example")
    lead = LeadFactory(first_name="Hank", last_name="Scorpio", email="hank@globex.example", phone="+44 20 7946 0001",
                       company=company, owner=rep_user)
    access = access_for(rep_user)
    for text in ("scorpio", "Hank Sc", "hank@globex.example", "+44 20 7946 0001", "globex"):
        assert [found.pk for found in search.global_search(access=access, text=text).leads] == [lead.pk], text


def test_results_come_grouped_with_the_company_and_the_deal(rep_user, rep_client):
    company = CompanyFactory(name="Initech", domain="initech.example")
    lead = LeadFactory(first_name="Peter", last_name="Gibbons", company=company, owner=rep_user)
    services.deal_open(lead=lead, value=Decimal("4200"), by=rep_user)
    results = search.global_search(access=access_for(rep_user), text="initech")
    assert [c.name for c in results.companies] == ["Initech"]
    assert results.companies[0].lead_count == 1
    assert [d.lead_id for d in results.deals] == [lead.pk]
    html = partial(rep_client, "initech")
    assert html.index(">Leads<") < html.index(">Companies<") < html.index(">Deals<")
    assert reverse("workspace:lead_detail", args=[lead.pk]) in html
    assert "4,200 EUR" in html and "Open" in html
    assert f"{reverse('workspace:lead_list')}?q=Initech" in html


def test_an_exact_email_comes_before_a_prefix_and_a_substring(rep_user):
    company = CompanyFactory(name="Other")
    inside = LeadFactory(first_name="Zed", last_name="Amanda", email="z@x.example", company=company, owner=rep_user)
    prefix = LeadFactory(first_name="Mandarin", last_name="Orange", email="m@x.example", company=company, owner=rep_user)
    exact = LeadFactory(first_name="Q", last_name="R", email="mand@x.example", company=company, owner=rep_user)
    found = search.global_search(access=access_for(rep_user), text="mand@x.example").leads
    assert found[0].pk == exact.pk
    order = [lead.pk for lead in search.global_search(access=access_for(rep_user), text="mand").leads]
    assert order.index(exact.pk) < order.index(inside.pk) and order.index(prefix.pk) < order.index(inside.pk)


def test_a_rep_finds_neither_another_reps_leads_nor_their_deals(rep_user, other_rep, rep_client):
    company = CompanyFactory(name="Umbrella Corp")
    mine = LeadFactory(first_name="Alice", last_name="Umbrella", company=company, owner=rep_user)
    pool = LeadFactory(first_name="Pool", last_name="Umbrella", company=company, owner=None)
    theirs = LeadFactory(first_name="Wesker", last_name="Umbrella", company=company, owner=other_rep)
    services.deal_open(lead=theirs, value=Decimal("99999"), by=other_rep)
    results = search.global_search(access=access_for(rep_user), text="umbrella")
    assert {lead.pk for lead in results.leads} == {mine.pk, pool.pk}
    assert results.deals == []
    # Companies are shared accounts; the count only holds the leads this rep may see.
    assert [(c.name, c.lead_count) for c in results.companies] == [("Umbrella Corp", 2)]
    html = partial(rep_client, "umbrella")
    assert "Wesker" not in html and "99999" not in html


def test_a_manager_finds_every_lead_and_deal(manager_user, rep_user):
    lead = LeadFactory(first_name="Milton", last_name="Waddams", owner=rep_user)
    services.deal_open(lead=lead, value=Decimal("10"), by=rep_user)
    results = search.global_search(access=access_for(manager_user), text="waddams")
    assert [found.pk for found in results.leads] == [lead.pk]
    assert [deal.lead_id for deal in results.deals] == [lead.pk]


def test_hostile_text_is_shown_escaped(rep_user, rep_client):
    company = CompanyFactory(name="<script>alert(1)</script> Ltd")
    LeadFactory(first_name="<img src=x onerror=alert(2)>", last_name="Evil", company=company, owner=rep_user)
    html = partial(rep_client, "script")
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; Ltd" in html
    html = partial(rep_client, "evil")
    assert "<img" not in html and "&lt;img src=x onerror=alert(2)&gt;" in html
    page = rep_client.get(URL, {"q": "<script>"}).content.decode()
    assert "<script>alert" not in page


def test_a_query_shorter_than_two_characters_returns_a_hint_and_no_query(rep_user, rep_client):
    LeadFactory(first_name="A", last_name="B", owner=rep_user)
    access = access_for(rep_user)
    with CaptureQueriesContext(connection) as ctx:
        results = search.global_search(access=access, text=" a ")
    assert results.too_short and results.is_empty and len(ctx.captured_queries) == 0
    assert "Type at least 2 characters" in partial(rep_client, "a")


def test_nothing_found_says_so(rep_client):
    assert "Nothing found for “zzqq”" in partial(rep_client, "zzqq")


def _bulk(owner, start, count):
    company = Company.objects.create(name=f"Bulkco {start}")
    leads = Lead.objects.bulk_create(
        Lead(first_name=f"Bulk{i}", last_name="Lead", email=f"bulk{i}@example.com", owner=owner, company=company,
             search_text=f"bulk{i} lead bulk{i}@example.com bulkco {start}")
        for i in range(start, start + count)
    )
    Deal.objects.bulk_create(Deal(lead=lead, value=1, currency="EUR") for lead in leads[:50])


def test_the_search_makes_the_same_queries_at_10_and_1000_leads(rep_client, rep_user, django_assert_max_num_queries):
    def queries():
        with CaptureQueriesContext(connection) as ctx:
            assert rep_client.get(URL, {"q": "bulk", "partial": "1"}).status_code == 200
        return len(ctx.captured_queries)

    _bulk(rep_user, 0, 10)
    at_10 = queries()
    _bulk(rep_user, 10, 990)
    at_1000 = queries()
    assert at_10 == at_1000
    with django_assert_max_num_queries(at_10 + 1):  # the full page's nav adds the bell's unread count
        assert rep_client.get(URL, {"q": "bulk"}).status_code == 200
    access = access_for(rep_user)
    with CaptureQueriesContext(connection) as ctx:
        results = search.global_search(access=access, text="bulk")
    assert len(results.leads) == len(results.deals) == search.GROUP_SIZE
    assert len(ctx.captured_queries) == 5  # leads, companies, their lead counts, matching leads' ids, their deals


def test_a_deal_is_found_when_its_lead_is_far_down_the_matches_and_another_reps_deal_is_not(rep_user, other_rep):
    Lead.objects.bulk_create(
        Lead(first_name=f"Far{i}", last_name="Match", email=f"far{i}@example.com", owner=rep_user,
             search_text=f"far{i} match far{i}@example.com") for i in range(300))
    last = Lead.objects.filter(owner=rep_user).order_by("-pk").first()
    hidden = LeadFactory(first_name="Far", last_name="Match", owner=other_rep)
    Deal.objects.bulk_create([Deal(lead=last, value=7, currency="EUR"), Deal(lead=hidden, value=9, currency="EUR")])

    results = search.global_search(access=access_for(rep_user), text="match")

    assert [deal.lead_id for deal in results.deals] == [last.pk]


def test_the_page_works_without_javascript(rep_user, rep_client):
    company = CompanyFactory(name="Vandelay Industries")
    lead = LeadFactory(first_name="Art", last_name="Vandelay", company=company, owner=rep_user)
    response = rep_client.get(URL, {"q": "vandelay"})
    html = response.content.decode()
    assert response.status_code == 200
    assert '<h1 class="h3">Search</h1>' in html and 'value="vandelay"' in html
    assert reverse("workspace:lead_detail", args=[lead.pk]) in html
    assert "All results on a page" not in html
    assert "Type at least 2 characters" in rep_client.get(URL).content.decode()


def test_every_reps_page_has_the_search_box(rep_client):
    html = rep_client.get(reverse("workspace:today")).content.decode()
    assert 'role="combobox"' in html and f'action="{URL}"' in html and "workspace/search.js" in html


def test_a_user_without_a_role_is_refused(client, no_role_user):
    client.force_login(no_role_user)
    assert client.get(URL, {"q": "anything"}).status_code == 403
