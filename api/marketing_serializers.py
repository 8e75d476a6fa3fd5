"""What the API reads and writes for marketing: sequences and enrollments, form submissions, conversions,
campaigns and their spend. Strict as the leads' serializers: an unknown field or a wrong type is an error."""

from rest_framework import serializers

from leads.models import Campaign, Persona, Resource, Source
from leads.pipeline import LeadStatus
from nurturing.models import Enrollment, Sequence, Step

from .serializers import (
    MAX_ID,
    ModelIdField,
    NamedRef,
    QueryDateTimeField,
    SlugRef,
    StrictCharField,
    StrictIntegerField,
    StrictSerializer,
    UtcDateTimeField,
    page_of,
)


class StrictDateField(serializers.DateField):
    """A date as text, YYYY-MM-DD: a number is the wrong type."""

    def to_internal_value(self, value):
        if not isinstance(value, str):
            self.fail("invalid", format="YYYY-MM-DD")
        return super().to_internal_value(value)


def _id_filter(**kwargs):
    return serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False, **kwargs)


class PagedQuery(serializers.Serializer):
    page_size = serializers.IntegerField(min_value=1, required=False, help_text="Capped at the server's maximum (100).")
    cursor = serializers.CharField(max_length=500, required=False, help_text="`next_cursor` of the previous page.")




# --- Sequences and enrollments ------------------------------------------------------------------


class StepSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    position = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=Step.Kind.choices)
    delay_seconds = serializers.SerializerMethodField(help_text="The wait after the previous step (after enrolling, for the first).")
    send_days = serializers.CharField(help_text="The weekdays it may go on: Monday = 0 … Sunday = 6.")
    window_start = serializers.TimeField(help_text="Earliest send time, in the lead's time zone.")
    window_end = serializers.TimeField(help_text="Latest send time, in the lead's time zone.")
    subject_template = serializers.CharField()
    condition = serializers.ChoiceField(choices=Step.Condition.choices)
    stage_action = serializers.CharField(help_text="The stage the lead moves to when it is sent; empty: none.")
    is_active = serializers.BooleanField()

    def get_delay_seconds(self, step) -> int:
        return int(step.delay.total_seconds())


class SequenceSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    goal = serializers.CharField()
    status = serializers.ChoiceField(choices=Sequence.Status.choices)
    goal_stage = serializers.ChoiceField(choices=LeadStatus.choices, help_text="A lead reaching this stage leaves the sequence.")
    target_persona = NamedRef(allow_null=True)
    active_enrollments = serializers.IntegerField(help_text="Leads in it now, sending.")
    paused_enrollments = serializers.IntegerField(help_text="Leads in it now, paused.")
    steps = StepSerializer(many=True)
    created_at = UtcDateTimeField()
    updated_at = UtcDateTimeField()


class SequenceRef(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class EnrollmentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    lead_id = serializers.IntegerField()
    sequence = SequenceRef()
    status = serializers.ChoiceField(choices=Enrollment.Status.choices)
    exit_reason = serializers.CharField()
    enrolled_at = UtcDateTimeField()
    enrolled_by_id = serializers.IntegerField(allow_null=True)
    finished_at = UtcDateTimeField(allow_null=True)


SequencePageSerializer = page_of(SequenceSerializer, "SequencePage")
EnrollmentPageSerializer = page_of(EnrollmentSerializer, "EnrollmentPage")


class SequenceListQuery(PagedQuery):
    status = serializers.ChoiceField(choices=Sequence.Status.choices, required=False)


class EnrollmentListQuery(PagedQuery):
    sequence = _id_filter()
    lead = _id_filter(help_text="A lead you may see (another is no match).")
    status = serializers.ChoiceField(choices=Enrollment.Status.choices, required=False)


class EnrollBody(StrictSerializer):
    lead = StrictIntegerField(min_value=1, max_value=MAX_ID, help_text="A lead you may see.")
    sequence = ModelIdField(queryset=Sequence.objects.all(), help_text="An active sequence.")


class RemoveBody(StrictSerializer):
    reason = StrictCharField(max_length=300, help_text="Why the lead leaves the sequence; kept on the enrollment.")


# --- Form submissions and conversions ---------------------------------------------------------------


class FormSubmissionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    lead_id = serializers.IntegerField()
    form_name = serializers.CharField()
    form_slug = serializers.CharField()
    page_url = serializers.CharField()
    submitted_at = UtcDateTimeField()
    data = serializers.DictField(help_text="The fields as submitted.")
    resource = SlugRef(allow_null=True, help_text="The guide, webinar or other resource it was for.")
    visitor_id = serializers.CharField()
    consent_given = serializers.BooleanField()
    consent_text = serializers.CharField()
    consent_version = serializers.CharField()
    utm_source = serializers.CharField()
    utm_medium = serializers.CharField()
    utm_campaign = serializers.CharField()
    utm_content = serializers.CharField()
    utm_term = serializers.CharField()
    click_id_type = serializers.CharField()
    landing_page = serializers.CharField()
    referrer = serializers.CharField()
    touched_at = UtcDateTimeField(allow_null=True)


class ConversionKindRef(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    is_macro = serializers.BooleanField()


class ConversionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = ConversionKindRef()
    lead_id = serializers.IntegerField(allow_null=True, help_text="Null: an anonymous visitor's, not yet a lead.")
    visitor_id = serializers.CharField()
    occurred_at = UtcDateTimeField()
    submission_id = serializers.IntegerField(allow_null=True)
    resource = SlugRef(allow_null=True)
    value = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True)


FormSubmissionPageSerializer = page_of(FormSubmissionSerializer, "FormSubmissionPage")
ConversionPageSerializer = page_of(ConversionSerializer, "ConversionPage")


class FormSubmissionListQuery(PagedQuery):
    form = serializers.SlugField(max_length=100, required=False, help_text="The form's slug.")
    lead = _id_filter(help_text="A lead you may see (another is no match).")
    submitted_after = QueryDateTimeField(required=False, help_text="From this moment on (inclusive).")
    submitted_before = QueryDateTimeField(required=False, help_text="Before this moment.")


class ConversionListQuery(PagedQuery):
    kind = serializers.SlugField(max_length=50, required=False, help_text="The conversion kind's slug.")
    lead = _id_filter(help_text="A lead you may see (another is no match).")
    occurred_after = QueryDateTimeField(required=False, help_text="From this moment on (inclusive).")
    occurred_before = QueryDateTimeField(required=False, help_text="Before this moment.")


class ConversionBody(StrictSerializer):
    lead = StrictIntegerField(min_value=1, max_value=MAX_ID, help_text="A lead you may see.")
    kind = StrictCharField(max_length=50, help_text="A conversion kind's slug, e.g. guide-download.")
    occurred_at = QueryDateTimeField(required=False, help_text="When it happened (ISO 8601; without an offset, in the "
                                     "server's time zone); default now; never in the future.")
    value = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0, required=False, allow_null=True)
    resource = ModelIdField(queryset=Resource.objects.all(), required=False, allow_null=True)


# --- Campaigns and spend ------------------------------------------------------------------------------


class CampaignSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    slug = serializers.CharField(help_text="Its utm_campaign value.")
    source = SlugRef(allow_null=True)
    medium = serializers.CharField()
    persona = NamedRef(allow_null=True)
    starts_on = serializers.DateField(allow_null=True)
    ends_on = serializers.DateField(allow_null=True)


class SpendSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    campaign_id = serializers.IntegerField()
    period_start = serializers.DateField()
    period_end = serializers.DateField()
    amount = serializers.DecimalField(max_digits=12, decimal_places=2)
    currency = serializers.CharField()


CampaignPageSerializer = page_of(CampaignSerializer, "CampaignPage")
SpendPageSerializer = page_of(SpendSerializer, "SpendPage")


class CampaignListQuery(PagedQuery):
    source = _id_filter()
    persona = _id_filter()


class SpendListQuery(PagedQuery):
    campaign = _id_filter()
    period_from = serializers.DateField(required=False, help_text="Rows whose period ends on or after this day.")
    period_to = serializers.DateField(required=False, help_text="Rows whose period starts on or before this day.")


class CampaignUpdateBody(StrictSerializer):
    name = StrictCharField(max_length=200, required=False)
    slug = StrictCharField(max_length=100, required=False, help_text="Its utm_campaign value: letters, digits, - and _.")
    source = ModelIdField(queryset=Source.objects.all(), required=False, allow_null=True)
    medium = StrictCharField(max_length=50, required=False, allow_blank=True)
    persona = ModelIdField(queryset=Persona.objects.all(), required=False, allow_null=True)
    starts_on = StrictDateField(required=False, allow_null=True)
    ends_on = StrictDateField(required=False, allow_null=True)


class CampaignCreateBody(CampaignUpdateBody):
    name = StrictCharField(max_length=200)
    slug = StrictCharField(max_length=100, help_text="Its utm_campaign value: letters, digits, - and _; free in any case.")


class SpendUpdateBody(StrictSerializer):
    period_start = StrictDateField(required=False)
    period_end = StrictDateField(required=False)
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0, required=False)
    currency = StrictCharField(max_length=3, required=False, help_text="ISO 4217, e.g. EUR; default the CRM's.")


class SpendCreateBody(SpendUpdateBody):
    campaign = ModelIdField(queryset=Campaign.objects.all())
    period_start = StrictDateField()
    period_end = StrictDateField()
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0)
