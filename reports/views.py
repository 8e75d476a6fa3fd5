"""The managers' reports: the dashboard, and each figure's rows (on a page and as CSV). Views parse the range and
the slice, ask the policy, and read the selectors; nothing here computes a figure."""

from collections.abc import Callable
from dataclasses import dataclass

from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from core.policy import check_may_view_reports, may_view_reports
from core.tabular import attachment_response, csv_lines, export_filename
from leads.models import Objection
from leads.pipeline import LeadStatus
from workspace.views import workspace_view

from . import definitions
from .charts import bar_chart, line_chart
from .figures import FIGURES
from .forms import ReportForm
from .selectors import attention, cohorts, economics, funnel, nurturing, objections, pipeline, reps, sales, trends
from .templatetags.reports import days

PAGE_SIZE = 50


def _form(request) -> ReportForm:
    form = ReportForm(request.GET)
    form.is_valid()
    return form


def _problems(form) -> list[str]:
    """The form's errors, each with the field it is about: "From: Enter a valid date."."""
    problems = []
    for name, errors in form.errors.items():
        field = form.fields.get(name)
        label = (field.label or name.replace("_", " ").capitalize()) if field else "Range"
        problems.append(f"{label}: {' '.join(errors)}")
    return problems


def _query_without(request, name: str) -> str:
    """The address's query without `name` (a link that sets it again for one row)."""
    query = request.GET.copy()
    query.pop(name, None)
    return query.urlencode()


def _funnel(request, date_range, part) -> dict:
    visitors = funnel.human_visitors(date_range, part)
    cohort = funnel.cohort_funnel(date_range, part, visitors=visitors)
    weeks = trends.weekly(date_range, part)
    return {"cohort": cohort, "svg_height": 18 * len(cohort.steps), "reference": funnel.REFERENCE_TRAFFIC_TO_LEAD,
            "period": funnel.period_funnel(date_range, part, visitors=visitors, leads=cohort.leads), "weeks": weeks,
            "trend": line_chart([f"{w.start:%-d %b}" for w in weeks],
                                [("Leads created", [w.leads for w in weeks]), ("Deals won", [w.won for w in weeks])])}


def _cohorts(request, date_range, part) -> dict:
    target = request.GET.get("cohort_target") if request.GET.get("cohort_target") in cohorts.TARGETS else "customer"
    return {"cohort_target": target, "cohort_targets": cohorts.TARGETS,
            "cohorts": cohorts.cohort_table(date_range, part, target)}


def _economics(request, date_range, part) -> dict:
    return {"economics_tables": [("By campaign", economics.by_campaign(date_range, part), "campaign"),
                                 ("By source", economics.by_source(date_range, part), "source")],
            "query_without": {name: _query_without(request, name) for name in ("campaign", "source")}}


def _nurturing(request, date_range, part) -> dict:
    return {"sequences": nurturing.sequence_rows(date_range, part)}


def _sales(request, date_range, part) -> dict:
    in_stage = sales.time_in_stage(date_range, part)
    closed = sales.closed_summary(date_range, part)
    return {"sales": {"win_rate": closed.win_rate, "deal_size": sales.deal_size(date_range, part),
                      "time_to_close": closed.time_to_close, "sales_cycle": closed.sales_cycle,
                      "time_in_stage": in_stage,
                      "time_in_stage_chart": bar_chart([row.label for row in in_stage],
                                                       [("Median", [row.spread.median_days for row in in_stage]),
                                                        ("p90", [row.spread.p90_days for row in in_stage])],
                                                       text=days)}}


def _pipeline(request, date_range, part) -> dict:
    totals = pipeline.open_deal_totals(part)
    return {"pipeline": {"by_stage": pipeline.pipeline_by_stage(part, totals=totals),
                         "forecast": pipeline.weighted_forecast(part, totals=totals),
                         "velocity": pipeline.pipeline_velocity(date_range, part, totals=totals)}}


def _attention(request, date_range, part) -> dict:
    stays = sales.time_in_stage(date_range, part)
    counts = attention.open_lead_counts(date_range, part, stays=stays)
    return {"attention": {"stuck": attention.stuck_by_stage(date_range, part, stays=stays, counts=counts),
                          "cold": attention.cold_by_owner(part, counts=counts)},
            "query_without": {"owner": _query_without(request, "owner")}}


def _objections(request, date_range, part) -> dict:
    categories = objections.by_category(date_range, part)
    return {"objections": {
        "categories": categories,
        "chart": bar_chart([row.label for row in categories], [("Raised", [row.raised for row in categories]),
                                                               ("Resolved", [row.resolved for row in categories])]),
        "categories_named": dict(Objection.Category.choices),
        # (title, rows, the names of the stored values where they have names)
        "breakdowns": [(title, objections.by_dimension(date_range, part, key), named)
                       for key, title, named in (("stage", "By stage when raised", dict(LeadStatus.choices)),
                                                 ("source", "By source", {}), ("product", "By product", {}))],
    }}


def _reps(request, date_range, part) -> dict:
    rows, team = reps.rep_rows(date_range, part)
    return {"reps": rows, "team": team, "query_without": {"owner": _query_without(request, "owner")}}


@dataclass(frozen=True)
class Report:
    """One page of the reports: its tab, what it reads (`build`), and the definitions it shows."""

    key: str
    title: str
    build: Callable[..., dict]
    definitions: tuple[str, ...]


# In tab order. The key is the policy's name for the report (core.policy.may_view_reports).
REPORTS = {report.key: report for report in (
    Report("funnel", "Funnel", _funnel, ("visitors", "traffic_to_lead", "cohort", "period", "trend")),
    Report("cohorts", "Cohorts", _cohorts, ("cohorts",)),
    Report("economics", "Economics", _economics, ("economics",)),
    Report("nurturing", "Nurturing", _nurturing, ("nurturing",)),
    Report("sales", "Sales", _sales, ("win_rate", "deal_size", "time_to_close", "sales_cycle", "time_in_stage")),
    Report("pipeline", "Pipeline", _pipeline, ("pipeline", "forecast", "velocity")),
    Report("attention", "Stuck and cold", _attention, ("stuck", "cold")),
    Report("objections", "Objections", _objections, ("objections",)),
    Report("reps", "Reps", _reps, ("reps",)),
)}


def _url(key: str) -> str:
    return reverse("reports:dashboard") if key == "funnel" else reverse("reports:report", args=[key])


@require_GET
@workspace_view
def report_page(request, key="funnel", *, access):
    """One report for the range and slice asked (the first page, /reports/, is the funnel). Each page reads only
    its own report, so it costs what that report costs."""
    report = REPORTS.get(key)
    if report is None:
        raise Http404("No such report.")
    check_may_view_reports(request.user, report.key)
    form = _form(request)
    query = request.GET.copy()
    query.pop("cohort_target", None)
    context = {"form": form, "nav": "reports", "report": report.key, "definitions": definitions.DEFINITIONS,
               "definitions_shown": [definitions.DEFINITIONS[name] for name in report.definitions],
               "query": request.GET.urlencode(), "tab_query": query.urlencode(),
               "section": f"reports/sections/{report.key}.html",
               "tabs": [{"key": r.key, "title": r.title, "url": _url(r.key)}
                        for r in REPORTS.values() if may_view_reports(request.user, r.key)],
               "time_zone": timezone.get_current_timezone_name()}
    if not form.errors:  # a range or slice it cannot read is shown with what to fix, never figures without it
        date_range, part = form.report_range(), form.report_slice()
        context["date_range"] = date_range
        context.update(report.build(request, date_range, part))
    return render(request, "reports/dashboard.html", context)


@require_GET
@workspace_view
def figure_rows(request, key, *, access):
    figure = FIGURES.get(key)
    if figure is None:
        raise Http404("No such figure.")
    check_may_view_reports(request.user, figure.report)
    form = _form(request)
    problems = _problems(form)
    params, caption = {}, ""
    if figure.params is not None and not problems:
        try:
            params, caption = figure.params(request.GET)
        except ValueError as exc:
            problems.append(str(exc))
    if problems:  # a link that was changed by hand: what to fix, no rows
        return render(request, "reports/figure.html", {"figure": figure, "problems": problems, "nav": "reports",
                                                      "query": request.GET.urlencode()}, status=400)
    rows = figure.rows(form.report_range(), form.report_slice(), **params)
    if request.GET.get("format") == "csv":
        date_range = form.report_range()
        name = export_filename(key, extension="csv",
                               filters={"from": date_range.start.isoformat(), "to": date_range.end.isoformat()})
        return attachment_response(filename=name, content_type="text/csv; charset=utf-8",
                                   lines=csv_lines(figure.columns, rows.iterator(chunk_size=2000)))
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "reports/figure.html", {
        "figure": figure, "caption": caption, "page": page, "form": form, "date_range": form.report_range(),
        "nav": "reports",
        "rows": [[column.value(row) for column in figure.columns] for row in page.object_list],
        "query": query.urlencode(), "generated_at": timezone.now(),
    })
