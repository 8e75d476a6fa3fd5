"""The funnel: human visitors -> leads -> MQL -> SQL -> opportunity -> customer, for a range and a slice.

Two kinds, as the field uses them, always labelled:

- **Cohort funnel**: of the leads created in the range, how many have reached
  each stage by now. A lead reached a stage if its stage history ever entered
  it or a stage after it in the funnel (a lead made SQL on day one reached
  MQL too; one recycled from SQL to nurturing still reached SQL; one lost at
  MQL reached MQL; `Lead.reached_mql_at` and the like, kept by the stage
  service from the history, see leads.reach). So each step is a share of the one before: the stage
  conversion rate, at most 100 %.
- **Period funnel**: how many entries into each stage happened in the range,
  whenever the lead was created (a lead re-entering MQL after recycling counts
  each time; a skipped stage has no entry). Its step ratios compare activity,
  not the same people, and can pass 100 %.

Visitors: distinct visitor ids with at least one page view in the range not
classed as a bot, an existing customer or the team (traffic.PageView.kind
"human"), counted from the daily visitor sets kept with the page views
(traffic.visitors), so a range of any length is exact and quick. They are sliced by the visit's UTM source, medium and campaign and
its landing page; persona and owner belong to leads, so with either of those
the visitor count and the traffic-to-lead rate are not shown.
"""

from dataclasses import dataclass

from django.db.models import Count

from leads.models import Campaign, Source, StageChange
from leads.pipeline import LeadStatus
from leads.reach import has_reached
from traffic.visitors import distinct_visitors

from ..ranges import DateRange, Slice
from .common import counted_leads, counted_rows, rate

# The steps after "leads", in order, with the stage whose entry marks them.
STEPS = (
    ("mql", LeadStatus.MQL),
    ("sql", LeadStatus.SQL),
    ("opportunity", LeadStatus.OPPORTUNITY),
    ("customer", LeadStatus.CUSTOMER),
)
# The traffic -> lead rate the field commonly sees for email and newsletter signups, shown beside ours.
REFERENCE_TRAFFIC_TO_LEAD = (0.05, 0.10)


@dataclass(frozen=True)
class Step:
    key: str
    label: str
    count: int
    rate: float | None  # this step / the step before (None: nothing before it, or not comparable)


@dataclass(frozen=True)
class Funnel:
    kind: str  # "cohort" or "period"
    date_range: DateRange
    visitors: int | None  # None: the slice is by persona or owner, which visits do not have
    steps: list[Step]

    @property
    def leads(self) -> int:
        return self.steps[0].count

    @property
    def traffic_to_lead(self) -> float | None:
        return None if self.visitors is None else rate(self.leads, self.visitors)

    @property
    def lead_to_customer(self) -> float | None:
        return rate(self.steps[-1].count, self.leads)


def human_visitors(date_range: DateRange, part: Slice) -> int | None:
    """Distinct human visitor ids with a page view in the range, sliced by the visit's attribution."""
    if part.lead_only:
        return None
    narrow = {}
    if part.source is not None:
        narrow["utm_source__in"] = Source.objects.filter(pk=part.source).values("slug")
    if part.campaign is not None:
        narrow["utm_campaign__in"] = Campaign.objects.filter(pk=part.campaign).values("slug")
    if part.medium is not None:
        narrow["utm_medium"] = part.medium
    if part.landing_page is not None:
        narrow["landing_path"] = part.landing_page
    # The union of the range's daily visitor sets (traffic.visitors), written with the page views.
    return distinct_visitors(date_range.start, date_range.end, **narrow)


def cohort_leads(date_range: DateRange, part: Slice):
    """The leads of the cohort: created in the range, in the slice."""
    return counted_leads().filter(date_range.q("created_at"), part.leads_q())


# Not given: the funnel counts the visitors itself (the dashboard counts them once for both funnels).
ASK = object()


def cohort_funnel(date_range: DateRange, part: Slice, *, visitors=ASK) -> Funnel:
    """Cohort funnel: of the leads created in the range (in the slice), how many have reached MQL, SQL,
    opportunity and customer by now; each step's rate is its count over the step before. `visitors`: the
    range's human visitors if already counted (`human_visitors`)."""
    counts = cohort_leads(date_range, part).aggregate(
        leads=Count("pk"), **{key: Count("pk", filter=has_reached(status)) for key, status in STEPS})
    steps = [Step("leads", "Leads", counts["leads"], None)]
    for key, status in STEPS:
        steps.append(Step(key, LeadStatus(status).label, counts[key], rate(counts[key], steps[-1].count)))
    return Funnel("cohort", date_range, human_visitors(date_range, part) if visitors is ASK else visitors, steps)


def stage_entries(date_range: DateRange, part: Slice, statuses):
    """The stage history rows that are entries into `statuses` (one or a list) in the range, of leads in the slice."""
    statuses = [statuses] if isinstance(statuses, str) else statuses
    return StageChange.objects.filter(date_range.q("changed_at"), counted_rows(part), to_status__in=statuses)


def cohort_reached(date_range: DateRange, part: Slice, key: str):
    """The cohort's leads behind one step of the cohort funnel ("leads", "mql", ..., "customer")."""
    leads = cohort_leads(date_range, part)
    if key == "leads":
        return leads
    return leads.filter(has_reached(dict(STEPS)[key]))


def period_entries(date_range: DateRange, part: Slice, key: str):
    """The stage history rows behind one step of the period funnel (for "leads": use `cohort_leads`)."""
    return stage_entries(date_range, part, dict(STEPS)[key])


def period_funnel(date_range: DateRange, part: Slice, *, visitors=ASK, leads=ASK) -> Funnel:
    """Period funnel: leads created in the range, and the entries into MQL, SQL, opportunity and customer that
    happened in the range (of leads in the slice, whenever created); each ratio is over the step before.
    `leads`: the leads created in the range and slice if already counted (the cohort funnel's first step)."""
    leads = cohort_leads(date_range, part).count() if leads is ASK else leads
    counts = dict(
        stage_entries(date_range, part, [status for _, status in STEPS])
        .order_by()
        .values_list("to_status")
        .annotate(n=Count("pk"))
        .values_list("to_status", "n")
    )
    steps = [Step("leads", "Leads", leads, None)]
    for key, status in STEPS:
        count = counts.get(status, 0)
        steps.append(Step(key, LeadStatus(status).label, count, rate(count, steps[-1].count)))
    return Funnel("period", date_range, human_visitors(date_range, part) if visitors is ASK else visitors, steps)
