"""What the reps' pages read. Each function makes a fixed number of queries, whatever the data size."""

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.db.models import Count, Exists, F, OuterRef, Q, Subquery, Sum, Value, Window
from django.db.models.functions import Cast, Coalesce
from django.utils import timezone

from booking.models import Meeting
from core.people import person_name
from core.policy import Access
from leads import pipeline
from leads.models import Activity, Deal, DealStage, FormSubmission, Lead, LeadTag, LeadTouch, Objection, StageChange, Task
from leads.selectors import lead_search, lead_timeline, untouched_since
from leads.tags import tag_key
from nurturing.models import Delivery, EmailEvent, Enrollment
from scoring.selectors import score_breakdown

from . import display

LIST_RELATED = ("owner", "company", "source", "campaign", "persona")


def _open_tasks():
    return Task.objects.filter(completed_at__isnull=True)


def cold_cutoff(now: datetime | None = None) -> datetime:
    return (now or timezone.now()) - timedelta(days=settings.CRM_COLD_AFTER_DAYS)


def cold_condition(now: datetime | None = None) -> Q:
    """Open leads nobody called, met or emailed for CRM_COLD_AFTER_DAYS days (never touched: counted from creation)."""
    return Q(status__in=pipeline.OPEN_STATUSES) & untouched_since(cold_cutoff(now))


# --- Today ---------------------------------------------------------------------------------


@dataclass
class Today:
    tasks: list
    tasks_total: int  # how many are due in all: `tasks` are the first of them
    replies: list
    cold_leads: list
    new_leads: list
    day_end: datetime
    cold_days: int
    meetings: list = dataclasses.field(default_factory=list)

    @property
    def more_tasks(self) -> bool:
        return self.tasks_total > len(self.tasks)


def day_end_of(now: datetime) -> datetime:
    """The last moment of `now`'s day, in the account's time zone."""
    return timezone.localtime(now).replace(hour=23, minute=59, second=59, microsecond=999999)


def my_open_tasks(*, user, due_by: datetime | None = None):
    """A user's open tasks (on live leads, or on no lead), due by `due_by` if given, the earliest due first."""
    tasks = Task.objects.filter(assignee=user, completed_at__isnull=True)
    if due_by is not None:
        tasks = tasks.filter(due_at__lte=due_by)
    return (
        tasks.filter(Q(lead__isnull=True) | Q(lead__archived_at__isnull=True))
        .select_related("lead", "lead__company")
        .order_by("due_at", "id")
    )


def today_for(*, access: Access, limit: int = 25, now: datetime | None = None) -> Today:
    """My open tasks due by the end of today (overdue first), replies waiting for me, my cold leads, my new leads.

    The tasks are the first `limit`, and how many there are in all (for "Show all N"): one query however many
    there are, the total counted over the whole match before the limit (a window).
    """
    now = now or timezone.now()
    day_end = day_end_of(now)
    user = access.user
    due = my_open_tasks(user=user, due_by=day_end)
    tasks = list(due.annotate(total_due=Window(Count("*")))[:limit])
    tasks_total = tasks[0].total_due if tasks else 0
    # Replies nobody has answered yet: newer than the lead's last call or meeting.
    replies = list(
        EmailEvent.objects.filter(
            kind=EmailEvent.Kind.REPLIED, lead__owner=user, lead__archived_at__isnull=True,
            occurred_at__gte=now - timedelta(days=settings.CRM_COLD_AFTER_DAYS),
        )
        .filter(Q(lead__last_touch_at__isnull=True) | Q(lead__last_touch_at__lt=F("occurred_at")))
        .select_related("lead__company", "delivery__step__sequence")
        .order_by("-occurred_at", "-id")[:limit]
    )
    mine = Lead.objects.live().filter(owner=user)
    cold = list(
        mine.filter(cold_condition(now)).select_related("company").order_by("last_touch_at", "created_at", "id")[:limit]
    )
    new = list(mine.filter(status=pipeline.LeadStatus.NEW).select_related("company", "source").order_by("-created_at", "-id")[:limit])
    return Today(tasks=tasks, tasks_total=tasks_total, replies=replies, cold_leads=cold, new_leads=new, day_end=day_end,
                 cold_days=settings.CRM_COLD_AFTER_DAYS, meetings=my_meetings(user=user, now=now, until=day_end, limit=limit))


def my_meetings(*, user, now: datetime, until: datetime, limit: int = 25) -> list:
    """The user's booked meetings up to `until`: today's to come, and those of the last week still waiting to be
    marked held or no-show (each with `started`), the earliest first. One query."""
    meetings = list(
        Meeting.objects.filter(rep=user, status=Meeting.Status.BOOKED, starts_at__gte=now - timedelta(days=7),
                               starts_at__lte=until)
        .select_related("lead__company", "page").order_by("starts_at", "id")[:limit]
    )
    for meeting in meetings:
        meeting.started = meeting.starts_at <= now
    return meetings


# --- My leads --------------------------------------------------------------------------------

SORTS = {
    "newest": ("-created_at", "-id"),
    "oldest": ("created_at", "id"),
    "score": ("-score", "-id"),
    "last_touch": ("-last_touch_at", "-id"),
    "least_touched": ("last_touch_at", "id"),
    "name": ("last_name", "first_name", "id"),
    # The list's sortable columns, the other way round (each reads one of the Lead indexes, backwards or not).
    "name_desc": ("-last_name", "-first_name", "-id"),
    "stage": ("status", "-created_at", "-id"),
    "stage_desc": ("-status", "created_at", "id"),
    "owner": ("owner", "-created_at", "-id"),
    "owner_desc": ("-owner", "created_at", "id"),
    "score_asc": ("score", "id"),
}


def lead_list(*, access: Access, filters: dict, now: datetime | None = None):
    """The leads a user may see, filtered and sorted; each row carries its next open task's due time."""
    now = now or timezone.now()
    scope = filters.get("scope") or ("mine" if access.owns_leads else "all")
    # "Mine" and the pool are within what every workspace user may see: they are
    # asked for directly, without the access filter's OR, which would blur
    # PostgreSQL's row estimate (the paginator's count past 10,000).
    if scope == "mine":
        leads = Lead.objects.live().filter(owner=access.user)
    elif scope == "pool" and access.has_workspace:
        leads = Lead.objects.live().filter(owner__isnull=True)
    else:
        leads = access.leads(Lead.objects.live())
    if filters.get("owner") is not None and access.sees_all:
        leads = leads.filter(owner=filters["owner"])
    if filters.get("q"):
        leads = lead_search(leads, filters["q"])
    for field in ("source", "campaign", "persona"):
        if filters.get(field) is not None:
            leads = leads.filter(**{field: filters[field]})
    if filters.get("status"):
        leads = leads.filter(status=filters["status"])
    if filters.get("score_min") is not None:
        leads = leads.filter(score__gte=filters["score_min"])
    if filters.get("tag"):
        leads = leads.filter(Exists(LeadTag.objects.filter(lead=OuterRef("pk"), tag__key=tag_key(filters["tag"]))))
    touched = filters.get("touched")
    if touched == "week":
        leads = leads.filter(last_touch_at__gte=now - timedelta(days=7))
    elif touched == "cold":
        leads = leads.filter(cold_condition(now))
    elif touched == "never":
        leads = leads.filter(last_touch_at__isnull=True)
    open_tasks = _open_tasks().filter(lead=OuterRef("pk"))
    next_task = filters.get("next_task")
    if next_task == "overdue":
        leads = leads.filter(Exists(open_tasks.filter(due_at__lt=now)))
    elif next_task == "today":
        leads = leads.filter(Exists(open_tasks.filter(due_at__lte=day_end_of(now))))
    elif next_task == "none":
        leads = leads.filter(~Exists(open_tasks))
    leads = leads.annotate(next_task_due=Subquery(open_tasks.order_by("due_at").values("due_at")[:1]))
    return leads.select_related(*LIST_RELATED).order_by(*SORTS.get(filters.get("sort") or "newest", SORTS["newest"]))


# --- The lead page ---------------------------------------------------------------------------


def lead_page(*, lead: Lead, limit: int = 30) -> dict:
    """Everything the lead page shows: open tasks, deals, enrollments, tags, and one timeline (newest first).

    Ten queries whatever the lead's history: stage changes, activities and
    objections (the leads timeline), tasks, emails with their events and the
    lead's form submissions (one query), enrollments, deals, first and last touch,
    the score's breakdown, the tags.
    """
    timeline = lead_timeline(lead=lead, limit=limit)
    tasks = list(
        Task.objects.filter(lead=lead)
        .filter(Q(completed_at__isnull=True) | Q(pk__in=Task.objects.filter(lead=lead).order_by("-created_at", "-id")
                                                  .values("pk")[:limit]))
        .select_related("assignee")
    )
    for task in tasks:
        state = "done" if task.completed_at else f"due {display.moment(task.due_at)}"
        timeline.append(
            {"at": task.created_at, "kind": "task", "title": f"Task: {task.title} ({state})", "detail": task.notes,
             "who": person_name(task.assignee)}
        )
    timeline.extend(_email_rows(lead=lead, limit=limit))
    timeline.sort(key=lambda row: row["at"], reverse=True)
    next_due = Delivery.objects.filter(enrollment=OuterRef("pk"), status=Delivery.Status.SCHEDULED).order_by("due_at")
    enrollments = list(
        Enrollment.objects.filter(lead=lead)
        .select_related("sequence")
        .annotate(next_due_at=Subquery(next_due.values("due_at")[:1]))
        .order_by("-enrolled_at", "-id")[:10]
    )
    deals = list(Deal.objects.filter(lead=lead).select_related("stage").order_by("-created_at", "-id")[:10])
    return {
        "score": score_breakdown(lead_id=lead.pk),
        "tags": list(LeadTag.objects.filter(lead=lead).select_related("tag", "added_by").order_by("tag__key")),
        "timeline": timeline[:limit],
        "open_tasks": sorted((t for t in tasks if t.completed_at is None), key=lambda t: (t.due_at, t.pk)),
        "deals": deals,
        # The stages an open deal may move to (read only when the lead has one).
        "deal_stages": list(DealStage.objects.filter(is_active=True)) if any(
            deal.status == Deal.Status.OPEN for deal in deals) else [],
        "enrollments": enrollments,
        # Where the lead came from: the visits of its first and its latest capture (one query).
        "touches": _touches(lead),
    }


def _touches(lead: Lead) -> list:
    found = {touch.kind: touch for touch in LeadTouch.objects.filter(lead=lead)}
    return [(label, found[kind]) for kind, label in (("first", "First visit"), ("last", "Latest visit")) if kind in found]


_EVENT_TITLES = {
    EmailEvent.Kind.DELIVERED: "Email delivered",
    EmailEvent.Kind.OPENED: "Email opened",
    EmailEvent.Kind.CLICKED: "Link clicked",
    EmailEvent.Kind.BOUNCED: "Email bounced",
    EmailEvent.Kind.COMPLAINED: "Marked as spam",
    EmailEvent.Kind.REPLIED: "Replied",
    EmailEvent.Kind.UNSUBSCRIBED: "Unsubscribed",
    EmailEvent.Kind.REJECTED: "Email rejected by the provider",
    EmailEvent.Kind.OTHER: "Email event",
}


def _email_rows(*, lead: Lead, limit: int) -> list[dict]:
    """Emails sent (or not), what the lead did with them, and the forms they sent: one UNION query."""
    text, flag, number = models.TextField(), models.BooleanField(), models.IntegerField()

    def columns(source, at, title, extra, detail, who, position, machine):
        return dict(src=Value(source, text), at=at, title=Cast(title, text), extra=Cast(extra, text),
                    detail=Cast(detail, text), who=Cast(who, text), position=position, machine=machine)

    deliveries = (
        Delivery.objects.filter(enrollment__lead=lead)
        .exclude(status=Delivery.Status.SCHEDULED)
        .annotate(**columns("delivery", Coalesce("sent_at", "updated_at"), F("subject"), F("status"), F("reason"),
                            F("step__sequence__name"), F("step__position"), Value(False, flag)))
    )
    events = EmailEvent.objects.filter(lead=lead).annotate(
        **columns("event", F("occurred_at"), F("kind"), F("url"), F("description"), F("machine_reason"),
                  Coalesce("delivery__step__position", Value(0, number)), F("is_machine"))
    )
    submissions = FormSubmission.objects.filter(lead=lead).annotate(
        **columns("submission", F("submitted_at"), F("form_name"), F("page_url"), Coalesce("resource__name", Value("", text)),
                  Value("", text), Value(0, number), Value(False, flag))
    )
    fields = ["src", "at", "title", "extra", "detail", "who", "position", "machine"]
    union = deliveries.order_by().values(*fields).union(
        events.order_by().values(*fields), submissions.order_by().values(*fields), all=True
    )
    rows = []
    for row in union.order_by("-at")[:limit]:
        if row["src"] == "delivery":
            if row["extra"] == Delivery.Status.SENT:
                title = f"Email sent: {row['title']}"
            else:
                title = f"Email {Delivery.Status(row['extra']).label.lower()}: {row['who']}, step {row['position']}"
            rows.append({"at": row["at"], "kind": "email", "title": title, "detail": row["detail"], "who": row["who"]})
        elif row["src"] == "event":
            title = _EVENT_TITLES.get(row["title"], "Email event")
            if row["machine"]:
                title += f" by a machine ({row['who']})"
            detail = row["extra"] if row["title"] == EmailEvent.Kind.CLICKED else row["detail"][:500]
            rows.append({"at": row["at"], "kind": "email", "title": title, "detail": detail, "who": "",
                         "machine": row["machine"]})
        else:
            title = f"Form: {row['title']}" + (f" ({row['detail']})" if row["detail"] else "")
            rows.append({"at": row["at"], "kind": "created", "title": title, "detail": row["extra"], "who": ""})
    return rows


# --- A rep's numbers ---------------------------------------------------------------------------

PERIODS = {"week": 7, "month": 30, "quarter": 90}


def rep_numbers(*, user, period: str = "month", now: datetime | None = None) -> dict:
    """Calls logged, objections by category and conversions over the last week, month or quarter."""
    now = now or timezone.now()
    since = now - timedelta(days=PERIODS.get(period, 30))
    calls = Activity.objects.filter(author=user, kind=Activity.Kind.CALL, occurred_at__gte=since).aggregate(
        total=Count("id"), connected=Count("id", filter=Q(outcome=Activity.CallOutcome.CONNECTED))
    )
    objections = list(
        Objection.objects.filter(raised_by=user, created_at__gte=since)
        .values("category")
        .annotate(total=Count("id"), resolved=Count("id", filter=Q(is_resolved=True)))
        .order_by("-total", "category")
    )
    labels = dict(Objection.Category.choices)
    for row in objections:
        row["label"] = labels.get(row["category"], row["category"])
    conversions = StageChange.objects.filter(
        changed_by=user, to_status=pipeline.LeadStatus.CUSTOMER, changed_at__gte=since
    ).count()
    won = (
        Deal.objects.filter(owner=user, status=Deal.Status.WON, closed_at__gte=since)
        .values("currency")
        .annotate(deals=Count("id"), value=Sum("value"))
        .order_by("currency")
    )
    return {
        "period": period if period in PERIODS else "month",
        "since": since,
        "calls": calls["total"],
        "calls_connected": calls["connected"],
        "objections": objections,
        "conversions": conversions,
        "won_by_currency": list(won),
    }


# --- Saved views ------------------------------------------------------------------------------------


def saved_view_list(*, user) -> list:
    """The user's saved Leads list views, by name."""
    from .models import SavedView

    return list(SavedView.objects.filter(user=user).order_by("name", "pk"))
