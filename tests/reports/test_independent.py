"""Every funnel and sales figure again, computed in plain Python from the raw rows of a random pipeline.

The pipeline is built through the services (random walks along the allowed moves, deals opened, won and lost,
merges), with a seeded generator, so a failure names its seed. The second computation reads Lead, StageChange,
Deal and LeadMerge rows and knows only the definitions in ../shared/domain.md, none of the selectors' queries.
"""

import random
from datetime import date, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import ValidationError

from leads import services
from leads.merging import lead_merge
from leads.models import Deal, Lead, LeadMerge, StageChange
from leads.pipeline import ALLOWED_MOVES, ENDED_STATUSES, FUNNEL
from reports.ranges import DateRange, Slice
from reports.selectors import funnel, sales
from tests.factories import LeadFactory, SourceFactory
from tests.reports.conftest import local

RANGE = DateRange(date(2026, 2, 1), date(2026, 3, 31))
RANK = {"mql": 1, "sql": 2, "opportunity": 3, "customer": 4}


def build(seed: int, boss) -> list:
    rng = random.Random(seed)
    sources = [SourceFactory(slug=f"s{seed}-{i}", name=f"S{i}") for i in range(2)]
    start = local(2026, 1, 1, 9)
    leads = []
    for n in range(40):
        at = start + timedelta(hours=rng.randrange(0, 24 * 100))
        lead = LeadFactory(created_at=at, source=rng.choice(sources + [None]), by=boss)
        leads.append(lead)
        for _ in range(rng.randrange(0, 6)):
            at += timedelta(hours=rng.randrange(1, 24 * 20))
            if at > local(2026, 4, 30):
                break
            lead.refresh_from_db()
            choice = rng.random()
            if lead.status == "opportunity" and choice < 0.3 and lead.deals.filter(status="open").exists():
                deal = lead.deals.filter(status="open").first()
                services.deal_mark_lost(deal=deal, reason="No", at=at, by=boss)
            elif lead.status not in ENDED_STATUSES | {"customer"} and choice < 0.45:
                services.lead_convert_to_customer(lead=lead, deal_value=rng.randrange(100, 5000),
                                                  currency=rng.choice(["EUR", "USD"]), at=at, by=boss)
            elif lead.status not in ENDED_STATUSES | {"customer"} and choice < 0.6:
                services.deal_open(lead=lead, value=rng.randrange(100, 5000), currency="EUR", at=at, by=boss)
            else:
                moves = [m for m in ALLOWED_MOVES[lead.status] if m != "customer"]
                if not moves:
                    break
                to = rng.choice(moves)
                services.lead_change_stage(lead=lead, to_status=to, reason="Random" if to in ENDED_STATUSES else "",
                                           at=at, by=boss)
    for keep, gone in rng.sample(list(zip(leads[::2], leads[1::2], strict=False)), 3):
        keep.refresh_from_db()
        gone.refresh_from_db()
        try:
            lead_merge(keep=keep, merge=gone, by=boss)
        except ValidationError:
            pass  # a pair the merge rules refuse (two customers, a customer kept as the duplicate): left apart
    return sources


def in_range(moment) -> bool:
    return RANGE.since <= moment < RANGE.until


def counted() -> list[Lead]:
    merged = {m.merged_id for m in LeadMerge.objects.filter(undone_at__isnull=True)}
    return [lead for lead in Lead.objects.all() if lead.pk not in merged]


def by_hand(source=None):
    leads = [lead for lead in counted() if source is None or lead.source_id == source]
    ids = {lead.pk for lead in leads}
    changes = [c for c in StageChange.objects.all() if c.lead_id in ids]
    cohort = [lead for lead in leads if in_range(lead.created_at)]
    furthest = {}
    for c in changes:
        furthest[c.lead_id] = max(furthest.get(c.lead_id, 0), RANK.get(c.to_status, 0))
    cohort_counts = [len(cohort)] + [sum(1 for lead in cohort if furthest.get(lead.pk, 0) >= r) for r in (1, 2, 3, 4)]
    period_counts = [len(cohort)] + [
        sum(1 for c in changes if c.to_status == s and in_range(c.changed_at)) for s in ("mql", "sql", "opportunity", "customer")]
    deals = [d for d in Deal.objects.select_related("lead") if d.lead_id in ids and d.closed_at and in_range(d.closed_at)]
    won = [d for d in deals if d.status == "won"]
    lost = [d for d in deals if d.status == "lost"]
    sizes = {}
    for d in won:
        n, total = sizes.get(d.currency, (0, Decimal(0)))
        sizes[d.currency] = (n + 1, total + d.value)

    def nearest(values, share):
        values = sorted(values)
        import math
        return values[max(math.ceil(share * len(values)), 1) - 1] if values else None

    stays = {}  # each stay in a funnel stage that ended in the range, as the move that ended it recorded it
    for c in changes:
        if c.time_in_from_stage is not None and in_range(c.changed_at) and c.from_status in FUNNEL[:-1]:
            stays.setdefault(c.from_status, []).append(c.time_in_from_stage.total_seconds() / 86400)
    closes = [(d.closed_at - d.created_at).total_seconds() / 86400 for d in won]
    cycles = [(d.closed_at - d.lead.created_at).total_seconds() / 86400 for d in won]
    return {
        "cohort": cohort_counts, "period": period_counts, "won": len(won), "lost": len(lost),
        "sizes": {c: (n, total, (total / n).quantize(Decimal("0.01"))) for c, (n, total) in sizes.items()},
        "close": (nearest(closes, 0.5), nearest(closes, 0.9)), "cycle": (nearest(cycles, 0.5), nearest(cycles, 0.9)),
        "stays": {status: (len(days), nearest(days, 0.5), nearest(days, 0.9)) for status, days in stays.items()},
    }


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_selectors_agree_with_a_computation_by_hand_from_the_raw_rows(db, manager_user, seed):
    with time_machine.travel(local(2026, 5, 15, 12), tick=False):
        sources = build(seed, manager_user)
        overall = by_hand()
        # The walk made something to check: leads in the range, deals closed in it.
        assert overall["cohort"][0] > 5 and overall["won"] + overall["lost"] > 0
        for source in (None, sources[0].pk):
            expected = by_hand(source)
            part = Slice(source=source)
            assert [s.count for s in funnel.cohort_funnel(RANGE, part).steps] == expected["cohort"], (seed, source)
            assert [s.count for s in funnel.period_funnel(RANGE, part).steps] == expected["period"], (seed, source)
            rate = sales.win_rate(RANGE, part)
            assert (rate.won, rate.lost) == (expected["won"], expected["lost"]), (seed, source)
            sizes = {s.currency: (s.won, s.total, s.average) for s in sales.deal_size(RANGE, part)}
            assert sizes == expected["sizes"], (seed, source)
            close, cycle = sales.time_to_close(RANGE, part), sales.sales_cycle(RANGE, part)
            # The page reads the three in one query: the same figures.
            assert sales.closed_summary(RANGE, part) == sales.ClosedSummary(rate, close, cycle), (seed, source)
            for got, want in (((close.median_days, close.p90_days), expected["close"]),
                              ((cycle.median_days, cycle.p90_days), expected["cycle"])):
                assert got == (pytest.approx(want[0]) if want[0] is not None else None,
                               pytest.approx(want[1]) if want[1] is not None else None), (seed, source)
            in_stage = {row.status: (row.spread.count, row.spread.median_days, row.spread.p90_days)
                        for row in sales.time_in_stage(RANGE, part) if row.spread.count}
            assert in_stage == {status: (n, pytest.approx(median), pytest.approx(p90))
                                for status, (n, median, p90) in expected["stays"].items()}, (seed, source)


