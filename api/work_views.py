"""The REST API's daily work on leads: activities (calls, notes, meetings), objections and tasks. As the lead
endpoints (api.views): each parses its input, asks the policy through the selectors, calls one service.

A record about a lead the token's user may not see is a 404; logging on a lead they see but may not work (a
pool lead not claimed yet) is a 403 with the policy's reason.
"""

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from leads import services as lead_services

from . import sales_selectors as selectors
from . import sales_serializers as serializers
from .idempotency import idempotent
from .sales_views import SalesApiView
from .schema import problems
from .serializers import EmptyBody
from .views import IDEMPOTENCY_PARAMETER

ACTIVITIES, TASKS = "activities", "tasks"
_CREATED = problems(400, 401, 403, 404, 422, 429)


# --- Activities ------------------------------------------------------------------------------------


class ActivityList(SalesApiView):
    required_scopes = {"GET": "activities:read"}

    @extend_schema(
        operation_id="activities_list", tags=[ACTIVITIES], parameters=[serializers.ActivityListQuery],
        responses={200: serializers.ActivityPage, **problems(400, 401, 403, 404, 429)},
        summary="List calls, notes and meetings",
        description="On the leads you may see (or one of them: `lead`), newest first.",
    )
    def get(self, request):
        query = self.query(serializers.ActivityListQuery)
        if query.get("lead") is not None:
            self.lead(query["lead"])
        rows = selectors.api_activity_list(access=self.access(), lead_id=query.get("lead"), kind=query.get("kind"))
        return self.page(rows, filters=query, field="occurred_at", descending=True,
                         serializer=serializers.ActivitySerializer, ordering="activities:-occurred_at")


class ActivityCreate(SalesApiView):
    """Log one kind of activity: the subclass names its body and its service."""

    required_scopes = {"POST": "activities:write"}
    body_class = None

    def log(self, lead, data):
        raise NotImplementedError

    def post(self, request):
        data = self.body(self.body_class)
        lead = self.lead(data.pop("lead"))
        activity = self.log(lead, data)
        fresh = selectors.api_activity_list(access=self.access()).get(pk=activity.pk)
        return Response(serializers.ActivitySerializer(fresh).data, status=status.HTTP_201_CREATED)


class CallCreate(ActivityCreate):
    body_class = serializers.CallBody

    def log(self, lead, data):
        return lead_services.activity_log_call(lead=lead, by=self.request.user, **data)

    @extend_schema(
        operation_id="activities_log_call", tags=[ACTIVITIES], request=serializers.CallBody,
        parameters=[IDEMPOTENCY_PARAMETER], summary="Log a call",
        description="It touches the lead; the first call to a New lead moves it to Contacted. With "
                    "`follow_up_title` and `follow_up_due_at`, a task for you is scheduled in the same step.",
        responses={201: serializers.ActivitySerializer, **_CREATED},
    )
    @idempotent
    def post(self, request):
        return super().post(request)


class NoteCreate(ActivityCreate):
    body_class = serializers.NoteBody

    def log(self, lead, data):
        return lead_services.activity_add_note(lead=lead, by=self.request.user, **data)

    @extend_schema(
        operation_id="activities_add_note", tags=[ACTIVITIES], request=serializers.NoteBody,
        parameters=[IDEMPOTENCY_PARAMETER], summary="Add a note", description="Internal: it does not touch the lead.",
        responses={201: serializers.ActivitySerializer, **_CREATED},
    )
    @idempotent
    def post(self, request):
        return super().post(request)


class MeetingCreate(ActivityCreate):
    body_class = serializers.MeetingBody

    def log(self, lead, data):
        return lead_services.activity_log_meeting(lead=lead, by=self.request.user, **data)

    @extend_schema(
        operation_id="activities_log_meeting", tags=[ACTIVITIES], request=serializers.MeetingBody,
        parameters=[IDEMPOTENCY_PARAMETER], summary="Log a meeting", description="It touches the lead.",
        responses={201: serializers.ActivitySerializer, **_CREATED},
    )
    @idempotent
    def post(self, request):
        return super().post(request)


class SocialTouchCreate(ActivityCreate):
    body_class = serializers.SocialTouchBody

    def log(self, lead, data):
        return lead_services.activity_log_social(lead=lead, by=self.request.user, **data)

    @extend_schema(
        operation_id="activities_log_social_touch", tags=[ACTIVITIES], request=serializers.SocialTouchBody,
        parameters=[IDEMPOTENCY_PARAMETER], summary="Log a social touch",
        description="A LinkedIn message, a comment, a connection accepted: it touches the lead (not \"gone cold\").",
        responses={201: serializers.ActivitySerializer, **_CREATED},
    )
    @idempotent
    def post(self, request):
        return super().post(request)


# --- Objections --------------------------------------------------------------------------------------


class ObjectionListCreate(SalesApiView):
    required_scopes = {"GET": "activities:read", "POST": "activities:write"}

    @extend_schema(
        operation_id="objections_list", tags=[ACTIVITIES], parameters=[serializers.ObjectionListQuery],
        responses={200: serializers.ObjectionPage, **problems(400, 401, 403, 404, 429)},
        summary="List objections", description="On the leads you may see (or one: `lead`), newest first.",
    )
    def get(self, request):
        query = self.query(serializers.ObjectionListQuery)
        if query.get("lead") is not None:
            self.lead(query["lead"])
        rows = selectors.api_objection_list(access=self.access(), lead_id=query.get("lead"),
                                            category=query.get("category"), is_resolved=query.get("is_resolved"))
        return self.page(rows, filters=query, field="created_at", descending=True,
                         serializer=serializers.ObjectionSerializer, ordering="objections:-created_at")

    @extend_schema(
        operation_id="objections_log", tags=[ACTIVITIES], request=serializers.ObjectionBody,
        parameters=[IDEMPOTENCY_PARAMETER], summary="Log an objection",
        description="In the lead's words, with our answer if we gave one (required to log it resolved).",
        responses={201: serializers.ObjectionSerializer, **_CREATED},
    )
    @idempotent
    def post(self, request):
        data = self.body(serializers.ObjectionBody)
        lead = self.lead(data.pop("lead"))
        objection = lead_services.objection_log(lead=lead, by=request.user, **data)
        fresh = selectors.api_objection_get(access=self.access(), pk=objection.pk)
        return Response(serializers.ObjectionSerializer(fresh).data, status=status.HTTP_201_CREATED)


class ObjectionResolve(SalesApiView):
    required_scopes = {"POST": "activities:write"}

    @extend_schema(
        operation_id="objections_resolve", tags=[ACTIVITIES], request=serializers.ResolveBody,
        summary="Mark an objection resolved", description="With how it was answered, unless that is recorded.",
        responses={200: serializers.ObjectionSerializer, **problems(400, 401, 403, 404, 422, 429)},
    )
    def post(self, request, pk):
        objection = selectors.api_objection_get(access=self.access(), pk=pk)
        data = self.body(serializers.ResolveBody)
        lead_services.objection_resolve(objection=objection, by=request.user, **data)
        return Response(serializers.ObjectionSerializer(selectors.api_objection_get(access=self.access(), pk=pk)).data)


# --- Tasks -------------------------------------------------------------------------------------------


class TaskListCreate(SalesApiView):
    required_scopes = {"GET": "tasks:read", "POST": "tasks:write"}

    @extend_schema(
        operation_id="tasks_list", tags=[TASKS], parameters=[serializers.TaskListQuery],
        responses={200: serializers.TaskPage, **problems(400, 401, 403, 404, 429)}, summary="List tasks",
        description="Soonest due first. Sales reps get theirs unless they ask `scope=all` (theirs, and the tasks "
                    "on the leads they may see); managers every task; never one on an archived lead.",
    )
    def get(self, request):
        query = self.query(serializers.TaskListQuery)
        if query.get("lead") is not None:
            self.lead(query["lead"])
        tasks = selectors.api_task_list(access=self.access(), filters=query)
        return self.page(tasks, filters=query, field="due_at", descending=False,
                         serializer=serializers.TaskSerializer, ordering="tasks:due_at")

    @extend_schema(
        operation_id="tasks_create", tags=[TASKS], request=serializers.TaskCreateBody,
        parameters=[IDEMPOTENCY_PARAMETER], summary="Schedule a task",
        description="For you by default; for someone else, managers only. On a lead: one you work.",
        responses={201: serializers.TaskSerializer, **_CREATED},
    )
    @idempotent
    def post(self, request):
        data = self.body(serializers.TaskCreateBody)
        lead_id = data.pop("lead", None)
        lead = self.lead(lead_id) if lead_id is not None else None
        assignee = data.pop("assignee", request.user)
        task = lead_services.task_create(assignee=assignee, lead=lead, by=request.user, **data)
        fresh = selectors.api_task_get(access=self.access(), pk=task.pk)
        return Response(serializers.TaskSerializer(fresh).data, status=status.HTTP_201_CREATED)


class TaskView(SalesApiView):
    def task(self, pk):
        return selectors.api_task_get(access=self.access(), pk=pk)

    def show(self, pk):
        return Response(serializers.TaskSerializer(self.task(pk)).data)


class TaskDetail(TaskView):
    required_scopes = {"GET": "tasks:read", "PATCH": "tasks:write"}

    @extend_schema(operation_id="tasks_retrieve", tags=[TASKS], summary="A task",
                   responses={200: serializers.TaskSerializer, **problems(401, 403, 404, 429)})
    def get(self, request, pk):
        return self.show(pk)

    @extend_schema(
        operation_id="tasks_update", tags=[TASKS], request=serializers.TaskUpdateBody, summary="Change a task",
        description="Its assignee or a manager; giving it to someone else is a manager's call. It is done "
                    "through `/complete/`.",
        responses={200: serializers.TaskSerializer, **problems(400, 401, 403, 404, 422, 429)},
    )
    def patch(self, request, pk):
        task = self.task(pk)
        data = self.body(serializers.TaskUpdateBody)
        lead_services.task_update(task=task, by=request.user, **data)
        return self.show(pk)


class TaskSnooze(TaskView):
    required_scopes = {"POST": "tasks:write"}

    @extend_schema(
        operation_id="tasks_snooze", tags=[TASKS], request=serializers.SnoozeBody, summary="Snooze a task",
        description="To a later `due_at`, from now on; a task already done is a 422.",
        responses={200: serializers.TaskSerializer, **problems(400, 401, 403, 404, 422, 429)},
    )
    def post(self, request, pk):
        task = self.task(pk)
        data = self.body(serializers.SnoozeBody)
        lead_services.task_snooze(task=task, until=data["due_at"], by=request.user)
        return self.show(pk)


class TaskComplete(TaskView):
    required_scopes = {"POST": "tasks:write"}

    @extend_schema(
        operation_id="tasks_complete", tags=[TASKS], request=None, summary="Mark a task done",
        description="Once: completing it again keeps the first time.",
        responses={200: serializers.TaskSerializer, **problems(400, 401, 403, 404, 429)},
    )
    def post(self, request, pk):
        self.body(EmptyBody)
        task = self.task(pk)
        lead_services.task_complete(task=task, by=request.user)
        return self.show(pk)
