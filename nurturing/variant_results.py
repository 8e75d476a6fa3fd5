"""What each variant of a step's A/B test got out of its leads, and whether a difference is more than chance.

Read only. Counted as the sequence report counts a step (nurturing.reports), per variant:

- the unit is the email: "sent" is an email of the step that left (`sent_at` set) rendered from the variant;
  "opened", "clicked", "replied" are such emails with at least one such event by a person (machine opens and
  clicks are never counted); "advanced" is such emails whose lead the step moved along the pipeline (a stage
  history row naming the step by id, `source_step_id`: its stage action on send, or on a click);
- only leads the test drew at random count: those given the winner after it was picked are left out, or the
  winner's numbers would grow with leads that had no choice of variant.

The check is a two-proportion z-test of each variant against the control (A) on one metric (the reply rate
unless asked otherwise), two-sided. Below `MIN_SENT` emails of either, or at p >= `SIGNIFICANCE`, the answer is
"too early to tell". With several variants each is compared with A on its own, so one of many may "lead" by
chance more often than 5% of the time: the page says so.
"""

import math
from dataclasses import dataclass, field

from django.db.models import Count, Exists, OuterRef, Q

from leads.models import StageChange

from .models import Delivery, EmailEvent, Step, StepVariant, VariantAssignment
from .reports import HUMAN, K

MIN_SENT = 100
SIGNIFICANCE = 0.05

# The metrics a test can be judged on: name -> label.
METRICS = {"replied": "reply rate", "clicked": "click rate", "opened": "open rate", "advanced": "stage advance rate"}
DEFAULT_METRIC = "replied"

_EVENTS = {"opened": Q(kind=K.OPENED) & HUMAN, "clicked": Q(kind=K.CLICKED) & HUMAN, "replied": Q(kind=K.REPLIED) & HUMAN}


@dataclass
class VariantRow:
    variant: StepVariant
    assigned: int = 0  # leads drawn for it, sent or not yet
    sent: int = 0
    opened: int = 0
    clicked: int = 0
    replied: int = 0
    advanced: int = 0
    verdict: str = ""  # against the control, on the test's metric (empty for the control)
    p_value: float | None = None

    def rate(self, metric: str) -> float | None:
        """Emails with it / emails sent, in percent (None when nothing was sent)."""
        return round(100 * getattr(self, metric) / self.sent, 1) if self.sent else None

    @property
    def rates(self) -> dict[str, float | None]:
        return {metric: self.rate(metric) for metric in METRICS}

    @property
    def is_winner(self) -> bool:
        return self.variant.step.winner_id == self.variant.pk


@dataclass
class TestResults:
    step: Step
    metric: str
    rows: list[VariantRow] = field(default_factory=list)

    @property
    def metric_label(self) -> str:
        return METRICS[self.metric]


def two_proportion_p_value(hits_a: int, sent_a: int, hits_b: int, sent_b: int) -> float:
    """Two-sided p-value of the z-test that two rates (hits / sent) are equal, on the pooled rate.

    1.0 when there is no spread to test (nothing sent, or every email alike in both).
    """
    if not sent_a or not sent_b:
        return 1.0
    pooled = (hits_a + hits_b) / (sent_a + sent_b)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / sent_a + 1 / sent_b))
    if spread == 0:
        return 1.0
    z = abs(hits_b / sent_b - hits_a / sent_a) / spread
    return max(0.0, min(1.0, math.erfc(z / math.sqrt(2))))  # 2 * (1 - Φ(|z|))


def _p_text(p: float) -> str:
    if p < 0.001:
        return "p < 0.001"
    return f"p = {p:.3f}" if p < 0.01 else f"p = {p:.2f}"


def verdict(control: VariantRow, row: VariantRow, metric: str) -> tuple[str, float | None]:
    """What the numbers say of `row` against the control on `metric`, in words (and the p-value, once computed)."""
    a, b = control.variant.label, row.variant.label
    if control.sent < MIN_SENT or row.sent < MIN_SENT:
        return (f"Too early to tell: each variant needs at least {MIN_SENT} emails sent "
                f"({a}: {control.sent}, {b}: {row.sent})."), None
    p = two_proportion_p_value(getattr(control, metric), control.sent, getattr(row, metric), row.sent)
    if p >= SIGNIFICANCE:
        return f"Too early to tell: no clear difference in {METRICS[metric]} yet ({_p_text(p)}).", p
    leader = b if row.rate(metric) > control.rate(metric) else a
    return f"{leader} leads ({_p_text(p)}).", p


def step_test_results(*, step: Step, metric: str = DEFAULT_METRIC) -> TestResults:
    """Each variant's numbers (see the module) and its verdict against A: four queries whatever the size."""
    if metric not in METRICS:
        metric = DEFAULT_METRIC
    variants = list(StepVariant.objects.filter(step=step).order_by("label"))
    for variant in variants:
        variant.step = step
    rows = {variant.pk: VariantRow(variant=variant) for variant in variants}
    results = TestResults(step=step, metric=metric, rows=list(rows.values()))
    if not rows:
        return results

    assigned = (VariantAssignment.objects.filter(step=step, is_random=True).values("variant_id")
                .annotate(n=Count("id")).order_by())
    for counts in assigned:
        rows[counts["variant_id"]].assigned = counts["n"]

    drawn = Exists(VariantAssignment.objects.filter(enrollment_id=OuterRef("enrollment_id"), step=step, is_random=True))
    moved = Exists(StageChange.objects.filter(lead_id=OuterRef("enrollment__lead_id"), source_step_id=step.pk))
    sent = (Delivery.objects.filter(drawn, step=step, sent_at__isnull=False, variant__isnull=False)
            .values("variant_id").annotate(sent=Count("id"), advanced=Count("id", filter=moved)).order_by())
    for counts in sent:
        row = rows.get(counts["variant_id"])
        if row is not None:
            row.sent, row.advanced = counts["sent"], counts["advanced"]

    drawn_event = Exists(VariantAssignment.objects.filter(
        enrollment_id=OuterRef("delivery__enrollment_id"), step=step, is_random=True))
    events = (EmailEvent.objects.filter(drawn_event, delivery__step=step, delivery__sent_at__isnull=False,
                                        delivery__variant__isnull=False)
              .values("delivery__variant_id")
              .annotate(**{name: Count("delivery", distinct=True, filter=q) for name, q in _EVENTS.items()})
              .order_by())
    for counts in events:
        row = rows.get(counts.pop("delivery__variant_id"))
        if row is not None:
            for name, n in counts.items():
                setattr(row, name, n)

    control = next((row for row in results.rows if row.variant.is_control), None)
    if control is not None:
        for row in results.rows:
            if row is not control:
                row.verdict, row.p_value = verdict(control, row, metric)
    return results
