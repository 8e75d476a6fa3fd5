"""The managers' reports: the dashboard, and each figure's rows (on a page and as CSV). Views parse the range and
the slice, ask the policy, and read the selectors; nothing here computes a figure."""

from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from core.policy import check_may_view_reports, may_view_reports
from core.tabular import attachment_response, csv_lines, export_filename
from workspace.views import workspace_view

from . import definitions
from .charts import line_chart
from .figures import FIGURES
from .forms import ReportForm
from .selectors import attention, cohorts, economics, funnel, nurturing, objections, pipeline, reps, sales, trends

PAGE_SIZE = 50


def _form(request) -> ReportForm:
    form = ReportForm(request.GET)
    form.is_valid()
    return form


def _query_without(request, name: str) -> str:
    """The address's query without `name` (a link that sets it again for one row)."""
    query = request.GET.copy()
    query.pop(name, None)
    return query.urlencode()


@require_GET
@workspace_view
def dashboard(request, *, access):
    if not may_view_reports(request.user, "funnel"):
        check_may_view_reports(request.user, "sales")
    form = _form(request)
    context = {"form": form, "nav": "reports", "definitions": definitions.DEFINITIONS,
               "reference": funnel.REFERENCE_TRAFFIC_TO_LEAD, "query": request.GET.urlencode(),
               "time_zone": timezone.get_current_timezone_name()}
    if "range" in form.cleaned_data:
        date_range, part = form.report_range(), form.report_slice()
        target = request.GET.get("cohort_target") if request.GET.get("cohort_target") in cohorts.TARGETS else "customer"
        visitors = funnel.human_visitors(date_range, part)
        cohort = funnel.cohort_funnel(date_range, part, visitors=visitors)
        context.update(date_range=date_range, cohort=cohort, svg_height=18 * len(cohort.steps),
                       period=funnel.period_funnel(date_range, part, visitors=visitors), cohort_target=target,
                       cohort_targets=cohorts.TARGETS, cohorts=cohorts.cohort_table(date_range, part, target))
        weeks = trends.weekly(date_range, part)
        context["weeks"] = weeks
        context["trend"] = line_chart([f"{w.start:%-d %b}" for w in weeks],
                                      [("Leads created", [w.leads for w in weeks]), ("Deals won", [w.won for w in weeks])])
        if may_view_reports(request.user, "economics"):
            context["economics"] = True
            context["economics_tables"] = [("By campaign", economics.by_campaign(date_range, part), "campaign"),
                                           ("By source", economics.by_source(date_range, part), "source")]
            context["query_without"] = {name: _query_without(request, name) for name in ("campaign", "source")}
        if may_view_reports(request.user, "nurturing"):
            context["sequences"] = nurturing.sequence_rows(date_range, part)
        if may_view_reports(request.user, "sales"):
            stays, totals = sales.time_in_stage(date_range, part), pipeline.open_deal_totals(part)
            counts = attention.open_lead_counts(date_range, part, stays=stays)
            context["sales"] = known = {
                "win_rate": sales.win_rate(date_range, part),
                "deal_size": sales.deal_size(date_range, part),
                "time_to_close": sales.time_to_close(date_range, part),
                "sales_cycle": sales.sales_cycle(date_range, part),
                "time_in_stage": stays,
            }
            known.update({
                "by_stage": pipeline.pipeline_by_stage(part, totals=totals, counts=counts),
                "forecast": pipeline.weighted_forecast(part, totals=totals),
                "velocity": pipeline.pipeline_velocity(date_range, part, totals=totals, known=known),
                "stuck": attention.stuck_by_stage(date_range, part, stays=stays, counts=counts),
                "cold": attention.cold_by_owner(part, counts=counts),
            })
            context["objections"] = {
                "categories": objections.by_category(date_range, part),
                "breakdowns": [(title, objections.by_dimension(date_range, part, key))
                               for key, title in (("stage", "By stage when raised"), ("source", "By source"),
                                                  ("product", "By product"))],
            }
            context["reps"], context["team"] = reps.rep_rows(date_range, part)
    return render(request, "reports/dashboard.html", context)


@require_GET
@workspace_view
def figure_rows(request, key, *, access):
    figure = FIGURES.get(key)
    if figure is None:
        raise Http404("No such figure.")
    check_may_view_reports(request.user, figure.report)
    form = _form(request)
    if "range" not in form.cleaned_data:
        raise Http404("Choose a valid range on the reports page first.")
    rows = figure.rows(form.report_range(), form.report_slice())
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
        "figure": figure, "page": page, "form": form, "date_range": form.report_range(), "nav": "reports",
        "rows": [[column.value(row) for column in figure.columns] for row in page.object_list],
        "query": query.urlencode(), "generated_at": timezone.now(),
    })
