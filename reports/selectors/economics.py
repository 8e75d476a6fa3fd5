"""Economics: what leads, qualified leads and customers cost, and what the spend brought back, per campaign and
per source, for a range.

- Spend in the range: each spend row counts for the days of its period that fall in the range, pro rata
  (a March row of 3,100 EUR gives 100 EUR a day; 1-10 March of it is 1,000 EUR). Spend periods of one campaign
  never overlap (the spend service refuses it), so no day is counted twice. A source's spend is that of its
  campaigns.
- Leads, MQLs, SQLs, customers: the leads created in the range from that campaign (or source), and how many
  of them have reached MQL, SQL and customer by now, as in the cohort funnel: the same attribution for the
  numerator and the denominator. Cost per lead = spend / leads; per MQL, SQL, customer likewise.
- Revenue won: the value of the deals won in the range by leads of that campaign (or source), whenever the lead
  came. Return on spend = revenue won / spend, only where both are in one currency.
Money is per currency: a campaign spending in EUR has no cost per lead in USD.
"""

from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, DecimalField, ExpressionWrapper, F, Func, IntegerField, Sum, Value
from django.db.models.functions import Greatest, Least

from leads.models import Campaign, CampaignSpend, Deal, Source
from leads.pipeline import LeadStatus
from leads.reach import has_reached

from ..ranges import DateRange, Slice
from .common import counted_leads, counted_rows

CENT = Decimal("0.01")


class DaysBetween(Func):
    """later - earlier, in whole days, for two dates, computed by the database."""

    output_field = IntegerField()
    arity = 2

    def as_sqlite(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, template="CAST(julianday(%(expressions)s) AS INTEGER)",
                           arg_joiner=") - julianday(", **extra)

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, template="((%(expressions)s))", arg_joiner=")::date - (", **extra)


def spend_in_range(date_range: DateRange):
    """Spend rows overlapping the range, each with `in_range`: its amount pro rata to the days in the range."""
    start, end = Value(date_range.start), Value(date_range.end)
    rows = CampaignSpend.objects.filter(period_start__lte=date_range.end, period_end__gte=date_range.start)
    return rows.annotate(
        overlap=DaysBetween(Least(F("period_end"), end), Greatest(F("period_start"), start)) + 1,
        days=DaysBetween(F("period_end"), F("period_start")) + 1,
    ).annotate(in_range=ExpressionWrapper(F("amount") * F("overlap") / F("days"),
                                          output_field=DecimalField(max_digits=20, decimal_places=6)))


@dataclass
class EconomicsRow:
    key: int | None
    name: str
    leads: int = 0
    mql: int = 0
    sql: int = 0
    customers: int = 0
    spend: dict[str, Decimal] = field(default_factory=dict)
    revenue: dict[str, Decimal] = field(default_factory=dict)

    def _cost(self, n: int) -> dict[str, Decimal | None]:
        return {currency: (amount / n).quantize(CENT) if n else None for currency, amount in self.spend.items()}

    @property
    def cost_per_lead(self):
        return self._cost(self.leads)

    @property
    def cost_per_mql(self):
        return self._cost(self.mql)

    @property
    def cost_per_sql(self):
        return self._cost(self.sql)

    @property
    def cost_per_customer(self):
        return self._cost(self.customers)

    @property
    def return_on_spend(self) -> dict[str, float | None]:
        """Revenue won / spend, per currency in which there is spend."""
        return {currency: (float(self.revenue.get(currency, 0) / amount) if amount else None)
                for currency, amount in self.spend.items()}


def _economics(date_range: DateRange, part: Slice, by: str) -> list[EconomicsRow]:
    lead_key = {"campaign": "campaign", "source": "source"}[by]
    spend_key = {"campaign": "campaign", "source": "campaign__source"}[by]
    names = dict((Campaign if by == "campaign" else Source).objects.values_list("pk", "name"))
    rows: dict[int | None, EconomicsRow] = {}

    def row(key):
        return rows.setdefault(key, EconomicsRow(key, names.get(key, "(none)") if key else "(none)"))

    leads = counted_leads().filter(part.leads_q())
    reached = {key: Count("pk", filter=has_reached(status))
               for key, status in (("mql", LeadStatus.MQL), ("sql", LeadStatus.SQL), ("customers", LeadStatus.CUSTOMER))}
    for values in (leads.filter(date_range.q("created_at")).order_by().values(lead_key)
                   .annotate(leads=Count("pk"), **reached)):
        target = row(values[lead_key])
        for name in ("leads", *reached):
            setattr(target, name, values[name])
    spend = spend_in_range(date_range)
    if part.campaign is not None:
        spend = spend.filter(campaign_id=part.campaign)
    if part.source is not None:
        spend = spend.filter(campaign__source_id=part.source)
    for key, currency, amount in spend.order_by().values_list(spend_key, "currency").annotate(total=Sum("in_range")):
        row(key).spend[currency] = Decimal(amount).quantize(CENT)
    won = Deal.objects.filter(date_range.q("closed_at"), counted_rows(part), status=Deal.Status.WON)
    for key, currency, amount in won.order_by().values_list(f"lead__{lead_key}", "currency").annotate(total=Sum("value")):
        row(key).revenue[currency] = Decimal(amount).quantize(CENT)
    return sorted(rows.values(), key=lambda r: (r.key is None, r.name.lower()))


def by_campaign(date_range: DateRange, part: Slice) -> list[EconomicsRow]:
    """Per campaign (and the leads with none): spend in the range, leads, MQLs, SQLs, customers, their costs,
    revenue won and return on spend."""
    return _economics(date_range, part, "campaign")


def by_source(date_range: DateRange, part: Slice) -> list[EconomicsRow]:
    """Per source: as per campaign, with a source's spend the sum of its campaigns'."""
    return _economics(date_range, part, "source")
