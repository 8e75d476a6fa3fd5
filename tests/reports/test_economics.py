"""Cost per lead, MQL, SQL and customer, revenue won and return on spend for March 2026, worked out by hand."""

import re
from datetime import date
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine

from leads import services
from leads.models import CampaignSpend
from reports.ranges import DateRange, Slice
from reports.selectors.economics import by_campaign, by_source, spend_in_range
from tests.factories import CampaignFactory, LeadFactory, SourceFactory
from tests.reports.conftest import local

MARCH = DateRange(date(2026, 3, 1), date(2026, 3, 31))


def spend(campaign, start, end, amount, currency="EUR"):
    return CampaignSpend.objects.create(campaign=campaign, period_start=start, period_end=end, amount=Decimal(amount),
                                        currency=currency)


@pytest.fixture
def march(db, manager_user):
    with time_machine.travel(local(2026, 4, 15, 12), tick=False):
        by = {"by": manager_user}
        ads, social = SourceFactory(slug="ads", name="Ads"), SourceFactory(slug="social", name="Social")
        spring = CampaignFactory(slug="spring", name="Spring", source=ads)
        webinar = CampaignFactory(slug="webinar", name="Webinar", source=social)
        spend(spring, date(2026, 3, 1), date(2026, 3, 31), "3100")     # 100 EUR a day
        spend(spring, date(2026, 2, 15), date(2026, 3, 14), "2800")    # 28 days, 100 EUR a day: 14 of them in March
        spend(webinar, date(2026, 3, 20), date(2026, 4, 9), "2100", "USD")  # 21 days, 12 in March
        spend(webinar, date(2026, 4, 10), date(2026, 4, 30), "600")    # April only
        # Spring's leads: S1 an MQL then a customer (1000 EUR on 20 Mar), S2 an MQL, S3 new. Webinar's: W1.
        s1, s2, s3 = (LeadFactory(created_at=local(2026, 3, 2, 9), source=ads, campaign=spring, **by) for _ in range(3))
        services.lead_change_stage(lead=s1, to_status="mql", at=local(2026, 3, 5, 9), **by)
        services.lead_convert_to_customer(lead=s1, deal_value=1000, currency="EUR", at=local(2026, 3, 20, 9), **by)
        services.lead_change_stage(lead=s2, to_status="mql", at=local(2026, 3, 6, 9), **by)
        LeadFactory(created_at=local(2026, 3, 31, 23, 30), source=social, campaign=webinar, **by)
        LeadFactory(created_at=local(2026, 3, 3, 9), **by)  # no source, no campaign
        LeadFactory(created_at=local(2026, 2, 28, 23, 59), source=ads, campaign=spring, **by)  # February's
        yield {"spring": spring, "webinar": webinar, "ads": ads}


def test_cost_per_lead_and_stage_per_campaign(march):
    rows = {row.name: row for row in by_campaign(MARCH, Slice())}

    spring = rows["Spring"]
    assert (spring.leads, spring.mql, spring.sql, spring.customers) == (3, 2, 1, 1)
    assert spring.spend == {"EUR": Decimal("4500.00")}  # 3,100 + 14 days of the February-March row
    assert spring.cost_per_lead == {"EUR": Decimal("1500.00")}
    assert spring.cost_per_mql == {"EUR": Decimal("2250.00")}
    assert spring.cost_per_sql == spring.cost_per_customer == {"EUR": Decimal("4500.00")}
    assert spring.revenue == {"EUR": Decimal("1000.00")}
    assert spring.return_on_spend == {"EUR": pytest.approx(1000 / 4500)}

    webinar = rows["Webinar"]
    assert (webinar.leads, webinar.spend, webinar.cost_per_lead) == (1, {"USD": Decimal("1200.00")}, {"USD": Decimal("1200.00")})
    assert webinar.cost_per_mql == {"USD": None}  # no MQL: no cost per MQL, not zero
    assert webinar.return_on_spend == {"USD": 0.0}
    assert (rows["(none)"].leads, rows["(none)"].spend) == (1, {})


def test_per_source_the_spend_is_its_campaigns(march):
    rows = {row.name: row for row in by_source(MARCH, Slice())}

    assert (rows["Ads"].leads, rows["Ads"].spend, rows["Ads"].revenue) == (3, {"EUR": Decimal("4500.00")},
                                                                            {"EUR": Decimal("1000.00")})
    assert (rows["Social"].leads, rows["Social"].spend) == (1, {"USD": Decimal("1200.00")})


def test_spend_counts_pro_rata_for_the_days_in_the_range(march):
    first_ten = DateRange(date(2026, 3, 1), date(2026, 3, 10))
    assert {row.name: row.spend for row in by_campaign(first_ten, Slice())}["Spring"] == {"EUR": Decimal("2000.00")}
    amounts = sorted(Decimal(row.in_range).quantize(Decimal("0.01")) for row in spend_in_range(first_ten))
    assert amounts == [Decimal("1000.00"), Decimal("1000.00")]
    assert by_campaign(DateRange(date(2026, 5, 1), date(2026, 5, 31)), Slice()) == []


def test_the_page_shows_the_economics_to_marketers_and_the_leads_link_to_their_list(client, march, marketer_user, rep_user):
    client.force_login(marketer_user)
    with time_machine.travel(local(2026, 4, 15, 12), tick=False):
        html = client.get("/reports/economics/", {"start": "2026-03-01", "end": "2026-03-31"}).content.decode()
        assert "4,500.00 EUR" in html and "1,500.00 EUR" in html  # Spring's spend and cost per lead
        assert f"&amp;campaign={march['spring'].pk}" in html
        # Sliced to one campaign, a row's link sets its own campaign instead of adding a second one.
        html = client.get("/reports/economics/", {"start": "2026-03-01", "end": "2026-03-31",
                                        "campaign": march["webinar"].pk}).content.decode()
        assert "1,200.00 USD" in html and "4,500.00 EUR" not in html
        links = [href.replace("&amp;", "&") for href in re.findall(r'href="(/reports/figures/cohort-leads/[^"]*)"', html)]
        assert links and all(len(parse_qs(urlsplit(link).query).get("campaign", [])) == 1 for link in links)
        rows = client.get("/reports/figures/cohort-leads/", {"start": "2026-03-01", "end": "2026-03-31",
                                                            "campaign": march["spring"].pk})
        assert rows.context["page"].paginator.count == 3
        # Each count of a campaign's leads that reached MQL, SQL or customer lists as many leads.
        page = client.get("/reports/economics/", {"start": "2026-03-01", "end": "2026-03-31"})
        spring = next(row for row in page.context["economics_tables"][0][1] if row.key == march["spring"].pk)
        for figure, count in (("cohort-mql", spring.mql), ("cohort-sql", spring.sql), ("cohort-customer", spring.customers)):
            if count:
                assert f'href="/reports/figures/{figure}/?start=2026-03-01&amp;end=2026-03-31&amp;campaign={spring.key}"' in (
                    page.content.decode()), figure
            listing = client.get(f"/reports/figures/{figure}/", {"start": "2026-03-01", "end": "2026-03-31",
                                                                "campaign": march["spring"].pk})
            assert listing.context["page"].paginator.count == count, figure
        assert spring.mql > 0
        client.force_login(rep_user)
        assert client.get("/reports/economics/", {"start": "2026-03-01", "end": "2026-03-31"}).status_code == 403
