"""What the API reads and writes, field by field. Bodies are strict: an unknown field or a wrong type is an error.

Serializers only parse and show; every change goes through `leads.services`.
"""

from collections.abc import Mapping
from datetime import UTC

from django.contrib.auth import get_user_model
from rest_framework import serializers

from core.events import EventType
from leads.models import Campaign, Lead, Persona, Source
from leads.money import WRITE_IN_DIGITS, amount_in_digits
from leads.pipeline import LeadStatus

MAX_ID = 2**63 - 1
MAX_INT = 2**31 - 1


class StrictSerializer(serializers.Serializer):
    """A body with a field it does not know is refused (a typo must not be ignored in silence)."""

    # Fields a reader sees that no body may set, with why.
    computed: dict[str, str] = {}

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            known = {name for name, field in self.fields.items() if not field.read_only}
            unknown = sorted(str(key) for key in data if key not in known)
            if unknown:
                raise serializers.ValidationError(
                    {key: [self.computed.get(key) or f"Unknown field. The fields are: {', '.join(sorted(known))}."]
                     for key in unknown}
                )
        return super().to_internal_value(data)


class StrictCharField(serializers.CharField):
    """Text, and only text: a number or a boolean is the wrong type, not a string."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictEmailField(serializers.EmailField):
    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer: "12", 12.5 and true are the wrong type."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class AmountField(serializers.DecimalField):
    """A deal value: a JSON number, or a string of digits ("1000", "1000.50"), up to 9,999,999,999.99 with cents.

    A string in scientific notation ("1e3"), "NaN" or "Infinity" is refused, as the pages and the services
    refuse it (leads.money), with the same words."""

    default_error_messages = {"invalid": WRITE_IN_DIGITS}

    def __init__(self, **kwargs):
        super().__init__(max_digits=12, decimal_places=2, **kwargs)

    def to_internal_value(self, data):
        try:
            amount_in_digits(data)
        except ValueError:
            self.fail("invalid")
        return super().to_internal_value(data)


class UtcDateTimeField(serializers.DateTimeField):
    """A moment as the API gives it: ISO 8601 in UTC ("2026-06-01T09:00:00Z"), whatever the server's TIME_ZONE."""

    timezone = UTC


class QueryDateTimeField(serializers.DateTimeField):
    """An ISO 8601 date and time; one that cannot be a moment (past year 9999 in UTC) is invalid, not a crash."""

    def to_internal_value(self, value):
        try:
            return super().to_internal_value(value)
        except OverflowError:
            self.fail("invalid", format="YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]")


class ModelIdField(serializers.PrimaryKeyRelatedField):
    """A row named by its id (a JSON integer within the database's range)."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("incorrect_type", data_type=type(data).__name__)
        if not 1 <= data <= MAX_ID:
            self.fail("does_not_exist", pk_value=data)
        return super().to_internal_value(data)


def _users():
    return get_user_model().objects.all()


# --- Output ---------------------------------------------------------------------------------


class NamedRef(serializers.Serializer):
    """A company or a persona: its id and name."""

    id = serializers.IntegerField()
    name = serializers.CharField()


class SlugRef(serializers.Serializer):
    id = serializers.IntegerField()
    slug = serializers.CharField()
    name = serializers.CharField()


class UserRef(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField(source="get_username")
    name = serializers.CharField(source="get_full_name")


class LeadSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    first_name = serializers.CharField()
    last_name = serializers.CharField()
    email = serializers.CharField()
    phone = serializers.CharField()
    title = serializers.CharField()
    company = NamedRef(allow_null=True)
    source = SlugRef(allow_null=True)
    campaign = SlugRef(allow_null=True)
    persona = NamedRef(allow_null=True)
    owner = UserRef(allow_null=True)
    status = serializers.ChoiceField(choices=LeadStatus.choices)
    stage_entered_at = UtcDateTimeField()
    lost_reason = serializers.CharField()
    score = serializers.IntegerField()
    timezone = serializers.CharField()
    utm_medium = serializers.CharField()
    utm_content = serializers.CharField()
    utm_term = serializers.CharField()
    created_at = UtcDateTimeField()
    updated_at = UtcDateTimeField()
    last_touch_at = UtcDateTimeField(allow_null=True)
    next_task_due_at = UtcDateTimeField(allow_null=True, source="next_task_due",
                                                 help_text="When the lead's next open task is due.")


class LeadPageSerializer(serializers.Serializer):
    results = LeadSerializer(many=True)
    next_cursor = serializers.CharField(allow_null=True, help_text="Pass as `cursor` for the next page; null on the last.")


class DealRef(serializers.Serializer):
    id = serializers.IntegerField()
    value = serializers.DecimalField(max_digits=12, decimal_places=2)
    currency = serializers.CharField()
    status = serializers.CharField()


class ConvertedSerializer(serializers.Serializer):
    lead = LeadSerializer()
    deal = DealRef()


class MergedSerializer(serializers.Serializer):
    lead = LeadSerializer()
    merge_id = serializers.IntegerField(help_text="The merge's record: POST /api/v1/merges/{id}/undo/ takes it back.")


class ActorSerializer(serializers.Serializer):
    kind = serializers.CharField(source="actor_kind", help_text="user, sequence, email_event, form, system, ...")
    user_id = serializers.IntegerField(source="actor_user_id", allow_null=True)
    ref = serializers.DictField(source="actor_ref", help_text="The source by ids when it is not a user.")


class EventSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    type = serializers.CharField()
    occurred_at = UtcDateTimeField()
    recorded_at = UtcDateTimeField()
    lead_id = serializers.IntegerField(allow_null=True)
    subject_type = serializers.CharField()
    subject_id = serializers.IntegerField(allow_null=True)
    actor = ActorSerializer(source="*")
    payload = serializers.DictField()


class EventPageSerializer(serializers.Serializer):
    results = EventSerializer(many=True)
    next_after = serializers.IntegerField(help_text="Pass as `after` for the next read: the last id sent (or `after` again).")


# --- Query parameters ---------------------------------------------------------------------------

LEAD_ORDERINGS = {"-created_at": ("created_at", True), "created_at": ("created_at", False)}


class LeadListQuery(serializers.Serializer):
    scope = serializers.ChoiceField(
        choices=[("all", "every lead you may see"), ("mine", "your leads"), ("pool", "the unassigned pool")],
        required=False, help_text="all (default): every lead you may see, as on the Leads page.",
    )
    status = serializers.ChoiceField(choices=LeadStatus.choices, required=False)
    owner = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False)
    source = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False)
    campaign = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False)
    persona = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False)
    q = serializers.CharField(max_length=200, required=False, help_text="Words in the name, email, phone or company.")
    created_after = QueryDateTimeField(required=False)
    created_before = QueryDateTimeField(required=False)
    updated_since = QueryDateTimeField(required=False)
    ordering = serializers.ChoiceField(choices=list(LEAD_ORDERINGS), required=False)
    page_size = serializers.IntegerField(min_value=1, required=False, help_text="Capped at the server's maximum (100).")
    cursor = serializers.CharField(max_length=500, required=False)


class EventListQuery(serializers.Serializer):
    after = serializers.IntegerField(min_value=0, max_value=MAX_ID, required=False, help_text="An event id: read the events after it.")
    type = serializers.ChoiceField(choices=EventType.choices, required=False)
    lead = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False)
    limit = serializers.IntegerField(min_value=1, required=False, help_text="Capped at the server's maximum (100).")


# --- Bodies ----------------------------------------------------------------------------------------


class LeadUpdateBody(StrictSerializer):
    first_name = StrictCharField(max_length=100, required=False, allow_blank=True)
    last_name = StrictCharField(max_length=100, required=False, allow_blank=True)
    email = StrictEmailField(max_length=254, required=False, allow_blank=True)
    phone = StrictCharField(max_length=40, required=False, allow_blank=True)
    title = StrictCharField(max_length=150, required=False, allow_blank=True)
    company = StrictCharField(max_length=200, required=False, allow_blank=True, allow_null=True,
                              help_text="The company's name: an existing one (any case) or a new one.")
    source = ModelIdField(queryset=Source.objects.all(), required=False, allow_null=True)
    campaign = ModelIdField(queryset=Campaign.objects.all(), required=False, allow_null=True)
    persona = ModelIdField(queryset=Persona.objects.all(), required=False, allow_null=True)
    utm_medium = StrictCharField(max_length=50, required=False, allow_blank=True)
    utm_content = StrictCharField(max_length=200, required=False, allow_blank=True)
    utm_term = StrictCharField(max_length=200, required=False, allow_blank=True)
    timezone = StrictCharField(max_length=64, required=False, allow_blank=True)

    computed = {"score": "The score is computed from the scoring rules (fit and engagement); it cannot be set."}


class LeadCreateBody(LeadUpdateBody):
    owner = ModelIdField(queryset=_users(), required=False, allow_null=True,
                         help_text="Default: you, if you can own leads; else the unassigned pool.")


class EmptyBody(StrictSerializer):
    """No fields: the action needs none."""


class AssignBody(StrictSerializer):
    owner = ModelIdField(queryset=_users(), allow_null=True, help_text="A sales rep or manager; null: the unassigned pool.")


class StageBody(StrictSerializer):
    to_status = serializers.ChoiceField(choices=[c for c in LeadStatus.choices])
    reason = StrictCharField(max_length=2000, required=False, allow_blank=True,
                             help_text="Why; required for lost and disqualified.")


class ConvertBody(StrictSerializer):
    deal_value = AmountField(min_value=0)
    currency = StrictCharField(min_length=3, max_length=3, required=False)
    product = StrictCharField(max_length=200, required=False, allow_blank=True)
    expected_close_on = serializers.DateField(required=False, allow_null=True)


class MergeBody(StrictSerializer):
    merge = ModelIdField(queryset=Lead.objects.live(), help_text="The lead merged into this one (it is archived).")


def page_of(item: type[serializers.Serializer], name: str) -> type[serializers.Serializer]:
    """A page of `item`s with the cursor of the next one, as every list answers."""
    return type(name, (serializers.Serializer,), {
        "results": item(many=True),
        "next_cursor": serializers.CharField(allow_null=True, help_text="Pass as `cursor` for the next page; null on the last."),
    })
