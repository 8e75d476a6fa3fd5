"""What the API reads and writes for the sales records: companies, activities, objections, tasks, deals, customers.

Strict as the lead bodies are (api.serializers): an unknown field or a wrong type is a 400 naming it.
Serializers only parse and show; every change goes through `leads.services`.
"""

from rest_framework import serializers

from leads.models import Activity, Deal, DealStage, Objection

from .serializers import (
    MAX_ID,
    MAX_INT,
    AmountField,
    ModelIdField,
    NamedRef,
    QueryDateTimeField,
    StrictCharField,
    StrictIntegerField,
    StrictSerializer,
    UserRef,
    UtcDateTimeField,
    _users,
    page_of,
)

# --- Output ---------------------------------------------------------------------------------


class LeadRef(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField(source="__str__", help_text="The lead's name, or their email or phone without one.")


class CompanySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    domain = serializers.CharField(help_text="The web domain, bare: example.com.")
    industry = serializers.CharField()
    size = serializers.CharField(help_text="Headcount band, e.g. 11-50.")
    country = serializers.CharField()
    created_at = UtcDateTimeField()


class ActivitySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    lead = LeadRef()
    kind = serializers.ChoiceField(choices=Activity.Kind.choices)
    author = UserRef(allow_null=True)
    occurred_at = UtcDateTimeField()
    body = serializers.CharField()
    direction = serializers.CharField(help_text="Calls: outbound or inbound; empty for notes and meetings.")
    outcome = serializers.CharField(help_text="Calls: connected, voicemail, no_answer, busy, wrong_number.")
    duration_seconds = serializers.IntegerField(allow_null=True)
    channel = serializers.CharField(help_text="Social touches: linkedin, x, facebook, instagram or other; else empty.")
    social_action = serializers.CharField(help_text="Social touches: what happened (message_sent, message_received, "
                                                    "comment, connection_sent, connection_accepted, engaged).")
    created_at = UtcDateTimeField()


class ObjectionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    lead = LeadRef()
    activity_id = serializers.IntegerField(allow_null=True, help_text="The call or meeting where it was raised.")
    category = serializers.ChoiceField(choices=Objection.Category.choices)
    lead_words = serializers.CharField()
    response = serializers.CharField(help_text="Our answer.")
    is_resolved = serializers.BooleanField()
    resolved_at = UtcDateTimeField(allow_null=True)
    raised_by = UserRef(allow_null=True)
    created_at = UtcDateTimeField()


class TaskSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    notes = serializers.CharField()
    lead = LeadRef(allow_null=True)
    assignee = UserRef()
    due_at = UtcDateTimeField()
    completed_at = UtcDateTimeField(allow_null=True)
    is_done = serializers.BooleanField()
    created_by = UserRef(allow_null=True)
    created_at = UtcDateTimeField()


class DealStageRef(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    probability = serializers.IntegerField(help_text="Percent chance to win, as the forecast weighs the deal.")


class DealSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    lead = LeadRef()
    customer = NamedRef(allow_null=True)
    owner = UserRef(allow_null=True)
    product = serializers.CharField()
    value = serializers.DecimalField(max_digits=12, decimal_places=2)
    currency = serializers.CharField()
    status = serializers.ChoiceField(choices=Deal.Status.choices)
    created_at = UtcDateTimeField()
    expected_close_on = serializers.DateField(allow_null=True)
    stage = DealStageRef(allow_null=True, help_text="Where an open deal is (a won or lost deal: where it closed).")
    stage_entered_at = UtcDateTimeField(allow_null=True)
    next_step = serializers.CharField()
    closed_at = UtcDateTimeField(allow_null=True)
    lost_reason = serializers.CharField()


class CustomerTotal(serializers.Serializer):
    currency = serializers.CharField()
    won_deals = serializers.IntegerField()
    won_value = serializers.DecimalField(max_digits=14, decimal_places=2)
    open_deals = serializers.IntegerField()
    open_value = serializers.DecimalField(max_digits=14, decimal_places=2)


class CustomerSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    company = NamedRef(allow_null=True)
    primary_lead = LeadRef(allow_null=True, source="visible_primary_lead",
                           help_text="The first contact; null when there is none or it is not a lead you may see.")
    became_customer_at = UtcDateTimeField()
    totals = CustomerTotal(many=True, help_text="Its deals by currency (those on leads you may see).")




CompanyPage = page_of(CompanySerializer, "CompanyPage")
ActivityPage = page_of(ActivitySerializer, "ActivityPage")
ObjectionPage = page_of(ObjectionSerializer, "ObjectionPage")
TaskPage = page_of(TaskSerializer, "TaskPage")
DealPage = page_of(DealSerializer, "DealPage")
CustomerPage = page_of(CustomerSerializer, "CustomerPage")


# --- Query parameters ---------------------------------------------------------------------------


class PageQuery(serializers.Serializer):
    page_size = serializers.IntegerField(min_value=1, required=False, help_text="Capped at the server's maximum (100).")
    cursor = serializers.CharField(max_length=500, required=False)


def _id_param(help_text: str = ""):
    return serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False, help_text=help_text)


class CompanyListQuery(PageQuery):
    q = serializers.CharField(max_length=200, required=False, help_text="Words in the name or the web domain.")


class CustomerListQuery(PageQuery):
    q = serializers.CharField(max_length=200, required=False, help_text="Words in the name.")


class ActivityListQuery(PageQuery):
    lead = _id_param("One lead's activities (404 if it is not one you may see).")
    kind = serializers.ChoiceField(choices=Activity.Kind.choices, required=False)


class ObjectionListQuery(PageQuery):
    lead = _id_param("One lead's objections (404 if it is not one you may see).")
    category = serializers.ChoiceField(choices=Objection.Category.choices, required=False)
    is_resolved = serializers.BooleanField(required=False, allow_null=True, default=None)


class TaskListQuery(PageQuery):
    scope = serializers.ChoiceField(
        choices=[("mine", "the tasks for you"), ("all", "every task you may see")], required=False,
        help_text="Default: mine for sales reps, all for managers and marketers (and when `assignee` is given).",
    )
    status = serializers.ChoiceField(choices=[("open", "not done"), ("done", "done")], required=False)
    due_after = QueryDateTimeField(required=False)
    due_before = QueryDateTimeField(required=False)
    lead = _id_param("One lead's tasks (404 if it is not one you may see).")
    assignee = _id_param("Whose tasks (within what you may see).")


class DealListQuery(PageQuery):
    status = serializers.ChoiceField(choices=Deal.Status.choices, required=False)
    owner = _id_param("Whose deals (within what you may see).")
    lead = _id_param("One lead's deals (404 if it is not one you may see).")
    closed_after = QueryDateTimeField(required=False)
    closed_before = QueryDateTimeField(required=False)


# --- Bodies ----------------------------------------------------------------------------------------


def _lead_field(help_text="The lead, by id: one you may see (else 404) and work (else 403)."):
    return StrictIntegerField(min_value=1, max_value=MAX_ID, help_text=help_text)


def _text(max_length: int, **kwargs):
    return StrictCharField(max_length=max_length, required=False, allow_blank=True, **kwargs)


class CompanyUpdateBody(StrictSerializer):
    name = StrictCharField(max_length=200, required=False)
    domain = _text(200, help_text="The web domain; a URL is cut to it (https://www.example.com/ is example.com).")
    industry = _text(100)
    size = _text(50)
    country = _text(100)


class CompanyCreateBody(CompanyUpdateBody):
    name = StrictCharField(max_length=200, help_text="Unique (any case): a second company of the name is a 422.")


class NoteBody(StrictSerializer):
    lead = _lead_field()
    body = StrictCharField(max_length=20_000)
    occurred_at = QueryDateTimeField(required=False, help_text="Default: now; never in the future.")


class MeetingBody(StrictSerializer):
    lead = _lead_field()
    occurred_at = QueryDateTimeField(help_text="When it took place (not in the future).")
    body = _text(20_000)
    duration_seconds = StrictIntegerField(min_value=0, max_value=MAX_INT, required=False, allow_null=True)


class SocialTouchBody(StrictSerializer):
    lead = _lead_field()
    channel = serializers.ChoiceField(choices=Activity.Channel.choices)
    social_action = serializers.ChoiceField(choices=Activity.SocialAction.choices)
    body = _text(20_000)
    occurred_at = QueryDateTimeField(required=False, help_text="Default: now; never in the future.")


class CallBody(StrictSerializer):
    lead = _lead_field()
    direction = serializers.ChoiceField(choices=Activity.Direction.choices)
    outcome = serializers.ChoiceField(choices=Activity.CallOutcome.choices)
    duration_seconds = StrictIntegerField(min_value=0, max_value=MAX_INT, required=False, allow_null=True)
    body = _text(20_000)
    occurred_at = QueryDateTimeField(required=False, help_text="Default: now; never in the future.")
    follow_up_title = _text(200, help_text="The next step: a task for you, due at `follow_up_due_at`.")
    follow_up_due_at = QueryDateTimeField(required=False, allow_null=True)


class ObjectionBody(StrictSerializer):
    lead = _lead_field()
    category = serializers.ChoiceField(choices=Objection.Category.choices)
    lead_words = StrictCharField(max_length=5_000, help_text="What the lead said, in their words.")
    response = _text(5_000, help_text="Our answer; required to log it resolved.")
    is_resolved = serializers.BooleanField(required=False)
    activity = ModelIdField(queryset=Activity.objects.all(), required=False, allow_null=True,
                            help_text="The call or meeting of this lead where it was raised.")


class ResolveBody(StrictSerializer):
    response = _text(5_000, help_text="Our answer (required if none was recorded).")


class TaskUpdateBody(StrictSerializer):
    title = StrictCharField(max_length=200, required=False)
    notes = _text(20_000)
    due_at = QueryDateTimeField(required=False)
    assignee = ModelIdField(queryset=_users(), required=False, help_text="Someone else: managers only.")


class TaskCreateBody(StrictSerializer):
    title = StrictCharField(max_length=200)
    due_at = QueryDateTimeField(help_text="From now on.")
    notes = _text(20_000)
    lead = StrictIntegerField(min_value=1, max_value=MAX_ID, required=False, allow_null=True,
                              help_text="The lead it is about: one you may see (else 404) and work (else 403).")
    assignee = ModelIdField(queryset=_users(), required=False, help_text="Default: you. Someone else: managers only.")


class SnoozeBody(StrictSerializer):
    due_at = QueryDateTimeField(help_text="The new due time, from now on.")


class DealUpdateBody(StrictSerializer):
    value = AmountField(min_value=0, required=False)
    currency = StrictCharField(min_length=3, max_length=3, required=False, help_text="ISO 4217, e.g. EUR.")
    product = _text(200)
    expected_close_on = serializers.DateField(required=False, allow_null=True)
    next_step = _text(300)
    stage = ModelIdField(queryset=DealStage.objects.all(), required=False,
                         help_text="Move the open deal to this deal stage (one in use), recorded in its stage history.")


class DealCreateBody(DealUpdateBody):
    lead = _lead_field()
    value = AmountField(min_value=0)
    stage = None  # a deal opens in the first stage in use


class LoseBody(StrictSerializer):
    reason = StrictCharField(max_length=300, help_text="Why the deal was lost (required).")
