"""A pipeline's history, written by the test as a file and imported through the deal history import, gives the
sales figures the test works out from the file itself: win rate over closed deals only, average deal size over won
deals only, open deals left out of time to close and the sales cycle."""

import csv
import math
import random
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from core.roles import Role
from reports.ranges import DateRange, Slice
from reports.selectors import funnel, sales
from tests.factories import UserFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

AGENTS = ("Moses Frase", "Darcel Schlecht", "Zane Levy")
PRODUCTS = ("GTX Pro", "GTXPro", "MG Special", "GTX Basic")  # one product spelled two ways
FIRST, LAST = date(2025, 1, 1), date(2025, 12, 31)


def local_midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_current_timezone())


def days_between(start: date, end: date) -> float:
    """Elapsed days from one local midnight to another (a daylight-saving change makes it a little off whole)."""
    return (local_midnight(end).astimezone(UTC) - local_midnight(start).astimezone(UTC)).total_seconds() / 86400


def write_history(path, rows: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    deals = []
    for n in range(rows):
        engaged = FIRST + timedelta(days=rng.randrange(0, 300))
        stage = rng.choices(["Won", "Lost", "Engaging", "Prospecting"], weights=[4, 3, 2, 1])[0]
        closed = engaged + timedelta(days=rng.randrange(0, 60)) if stage in ("Won", "Lost") else None
        value = rng.randrange(50, 10_000) if stage == "Won" else (0 if stage == "Lost" else None)
        deals.append({"opportunity_id": f"OPP{seed}-{n:05d}", "sales_agent": rng.choice(AGENTS),
                      "product": rng.choice(PRODUCTS), "account": f"Account {rng.randrange(0, 200)}",
                      "deal_stage": stage, "engage_date": engaged.isoformat(),
                      "close_date": closed.isoformat() if closed else "",
                      "close_value": "" if value is None else str(value)})
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(deals[0]))
        writer.writeheader()
        writer.writerows(deals)
    return deals


def nearest(values, share):
    values = sorted(values)
    return values[max(math.ceil(share * len(values)), 1) - 1]


def test_an_imported_history_gives_the_figures_worked_out_from_the_file(tmp_path, settings, manager_user):
    settings.CRM_IMPORTS_DIR = tmp_path / "imports"
    for name in AGENTS:
        first, last = name.split()
        UserFactory(username=first.lower(), first_name=first, last_name=last, role=Role.SALES_REP)
    path = tmp_path / "pipeline.csv"
    with time_machine.travel(local_midnight(date(2026, 2, 1)), tick=False):
        deals = write_history(path, 2000, seed=7)
        call_command("import_leads", str(path), "--kind", "deals", "--by", manager_user.username,
                     "--stage", "Prospecting=sql", "--stage", "Engaging=opportunity", "--stage", "Won=won",
                     "--stage", "Lost=lost", "--currency", "EUR", stdout=open(tmp_path / "out.txt", "w"))

        year = DateRange(FIRST, date(2026, 1, 31))
        won = [d for d in deals if d["deal_stage"] == "Won"]
        lost = [d for d in deals if d["deal_stage"] == "Lost"]
        rate = sales.win_rate(year, Slice())
        assert (rate.won, rate.lost) == (len(won), len(lost))  # open deals are in neither
        [eur] = sales.deal_size(year, Slice())
        total = sum(Decimal(d["close_value"]) for d in won)
        assert (eur.won, eur.total, eur.average) == (len(won), total, (total / len(won)).quantize(Decimal("0.01")))

        took = [days_between(date.fromisoformat(d["engage_date"]), date.fromisoformat(d["close_date"])) for d in won]
        for spread in (sales.time_to_close(year, Slice()), sales.sales_cycle(year, Slice())):
            # The deal and its lead both start at the engage date: time to close and the cycle are the same here.
            assert spread.count == len(won)
            assert spread.median_days == pytest.approx(nearest(took, 0.5))
            assert spread.p90_days == pytest.approx(nearest(took, 0.9))
            assert spread.mean_days == pytest.approx(sum(took) / len(took))

        # Cohorts: every lead was created at its engage date and entered its stage then: Prospecting at SQL,
        # the others at Opportunity (a won or lost deal went through it); won ones then became customers.
        cohort = funnel.cohort_funnel(year, Slice())
        past_opportunity = sum(1 for d in deals if d["deal_stage"] != "Prospecting")
        assert [s.count for s in cohort.steps] == [len(deals), len(deals), len(deals), past_opportunity, len(won)]
