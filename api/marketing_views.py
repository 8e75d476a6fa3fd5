"""The REST API's marketing endpoints: sequences and enrollments, form submissions, conversions, campaigns and spend.

As the leads' endpoints: each parses its input, asks the policy, calls one service. A lead the user may not see
is a 404 (in a body too, naming the field); an action the policy refuses is a 403 with its reason; a rule of a
service (a lead that cannot be enrolled, overlapping spend) is a 422 naming the field.
"""

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from core.policy import check_may_manage_campaigns
from leads import campaigns as campaign_services
from leads import services as lead_services
from nurturing import services as nurturing_services

from . import marketing_selectors as selectors
from . import marketing_serializers as serializers
from .id_pagination import id_page
from .idempotency import idempotent
from .pagination import page_size
from .schema import problems
from .serializers import EmptyBody
from .views import IDEMPOTENCY_PARAMETER, ApiView

SEQUENCES, ENROLLMENTS, SUBMISSIONS, CONVERSIONS, CAMPAIGNS, SPEND = (
    "sequences", "enrollments", "form submissions", "conversions", "campaigns", "campaign spend",
)
READ_PROBLEMS = problems(400, 401, 403, 429)
ONE_PROBLEMS = problems(401, 403, 404, 429)


class MarketingView(ApiView):
    def page_by_time(self, rows, query: dict, field: str, serializer_class):
        """Newest first by `field`, a page after the cursor."""
        return self.page(rows, filters=query, field=field, descending=True, serializer=serializer_class,
                         ordering=f"-{field}")

    def page_by_id(self, rows, query: dict, name: str, serializer_class):
        found, next_cursor = id_page(rows, cursor=query.get("cursor"), size=page_size(query.get("page_size")), name=name)
        return Response({"results": serializer_class(found, many=True).data, "next_cursor": next_cursor})


# --- Sequences -----------------------------------------------------------------------------------------


class SequenceList(MarketingView):
    required_scopes = {"GET": "sequences:read"}

    @extend_schema(
        operation_id="sequences_list", tags=[SEQUENCES], parameters=[serializers.SequenceListQuery],
        responses={200: serializers.SequencePageSerializer, **READ_PROBLEMS}, summary="List sequences",
        description="Every sequence, newest first, with its steps in order and how many leads are in it now "
                    "(active and paused). Sequences are built in the admin; the API reads them.",
    )
    def get(self, request):
        query = self.query(serializers.SequenceListQuery)
        return self.page_by_time(selectors.api_sequence_list(filters=query), query, "created_at",
                                 serializers.SequenceSerializer)


class SequenceDetail(MarketingView):
    required_scopes = {"GET": "sequences:read"}

    @extend_schema(operation_id="sequences_retrieve", tags=[SEQUENCES], summary="A sequence, with its steps",
                   responses={200: serializers.SequenceSerializer, **ONE_PROBLEMS})
    def get(self, request, pk):
        return Response(serializers.SequenceSerializer(selectors.api_sequence_get(pk=pk)).data)


# --- Enrollments -------------------------------------------------------------------------------------


class EnrollmentView(MarketingView):
    def show_enrollment(self, pk, code=status.HTTP_200_OK):
        fresh = selectors.api_enrollment_get(access=self.access(), pk=pk)
        return Response(serializers.EnrollmentSerializer(fresh).data, status=code)


class EnrollmentListCreate(EnrollmentView):
    required_scopes = {"GET": "sequences:read", "POST": "sequences:write"}

    @extend_schema(
        operation_id="enrollments_list", tags=[ENROLLMENTS], parameters=[serializers.EnrollmentListQuery],
        responses={200: serializers.EnrollmentPageSerializer, **READ_PROBLEMS}, summary="List enrollments",
        description="Leads in sequences, newest enrollment first: reps see those of the leads they may see.",
    )
    def get(self, request):
        query = self.query(serializers.EnrollmentListQuery)
        rows = selectors.api_enrollment_list(access=self.access(), filters=query)
        return self.page_by_time(rows, query, "enrolled_at", serializers.EnrollmentSerializer)

    @extend_schema(
        operation_id="enrollments_create", tags=[ENROLLMENTS], request=serializers.EnrollBody,
        parameters=[IDEMPOTENCY_PARAMETER], summary="Enroll a lead in a sequence",
        description="The lead's owner, a marketer or a manager may. A lead that cannot be enrolled (the sequence "
                    "is not active, the lead has no email, is suppressed, past the goal stage or already in it) is "
                    "a 422 naming `sequence`, with the reason.",
        responses={201: serializers.EnrollmentSerializer, **problems(400, 401, 403, 404, 422, 429)},
    )
    @idempotent
    def post(self, request):
        data = self.body(serializers.EnrollBody)
        lead = selectors.api_body_lead_get(access=self.access(), pk=data["lead"])
        enrollment = nurturing_services.enrollment_create(lead=lead, sequence=data["sequence"], by=request.user)
        return self.show_enrollment(enrollment.pk, status.HTTP_201_CREATED)


class EnrollmentDetail(EnrollmentView):
    required_scopes = {"GET": "sequences:read"}

    @extend_schema(operation_id="enrollments_retrieve", tags=[ENROLLMENTS], summary="An enrollment",
                   responses={200: serializers.EnrollmentSerializer, **ONE_PROBLEMS})
    def get(self, request, pk):
        return self.show_enrollment(pk)


class EnrollmentAction(EnrollmentView):
    """Pause, resume or remove: the policy first (403), then whether the enrollment still runs (422)."""

    required_scopes = {"POST": "sequences:write"}
    action = ""

    def change(self, request, pk, body_class):
        enrollment = selectors.api_enrollment_get(access=self.access(), pk=pk, action="enroll")
        data = self.body(body_class)
        nurturing_services.enrollment_live_check(enrollment=enrollment, action=self.action)
        self.apply(enrollment, data)
        return self.show_enrollment(enrollment.pk)


def _action_schema(name: str, summary: str, description: str, request):
    return extend_schema(
        operation_id=f"enrollments_{name}", tags=[ENROLLMENTS], request=request, summary=summary, description=description,
        responses={200: serializers.EnrollmentSerializer, **problems(400, 401, 403, 404, 422, 429)},
    )


class EnrollmentPause(EnrollmentAction):
    action = "pause"

    @_action_schema("pause", "Pause a lead's enrollment", "Its emails wait until it is resumed; pausing a paused "
                    "one changes nothing. An ended enrollment is a 422 naming `status`.", None)
    def post(self, request, pk):
        return self.change(request, pk, EmptyBody)

    def apply(self, enrollment, data):
        nurturing_services.enrollment_pause(enrollment=enrollment, by=self.request.user)


class EnrollmentResume(EnrollmentAction):
    action = "resume"

    @_action_schema("resume", "Resume a paused enrollment", "Emails due meanwhile go at the next send window; "
                    "resuming an active one changes nothing. An ended enrollment is a 422 naming `status`.", None)
    def post(self, request, pk):
        return self.change(request, pk, EmptyBody)

    def apply(self, enrollment, data):
        nurturing_services.enrollment_resume(enrollment=enrollment, by=self.request.user)


class EnrollmentRemove(EnrollmentAction):
    action = "remove"

    @_action_schema("remove", "Take a lead out of a sequence", "Nothing more is sent; the reason stays on the "
                    "enrollment. An ended enrollment is a 422 naming `status`.", serializers.RemoveBody)
    def post(self, request, pk):
        return self.change(request, pk, serializers.RemoveBody)

    def apply(self, enrollment, data):
        nurturing_services.enrollment_exit(enrollment=enrollment, reason=data["reason"], by=self.request.user)


# --- Form submissions -----------------------------------------------------------------------------------


class FormSubmissionList(MarketingView):
    required_scopes = {"GET": "marketing:read"}

    @extend_schema(
        operation_id="form_submissions_list", tags=[SUBMISSIONS], parameters=[serializers.FormSubmissionListQuery],
        responses={200: serializers.FormSubmissionPageSerializer, **READ_PROBLEMS}, summary="List form submissions",
        description="The forms leads sent, newest first, with the visit they came from and the consent given; reps "
                    "see those of the leads they may see.",
    )
    def get(self, request):
        query = self.query(serializers.FormSubmissionListQuery)
        rows = selectors.api_submission_list(access=self.access(), filters=query)
        return self.page_by_time(rows, query, "submitted_at", serializers.FormSubmissionSerializer)


class FormSubmissionDetail(MarketingView):
    required_scopes = {"GET": "marketing:read"}

    @extend_schema(operation_id="form_submissions_retrieve", tags=[SUBMISSIONS], summary="A form submission",
                   responses={200: serializers.FormSubmissionSerializer, **ONE_PROBLEMS})
    def get(self, request, pk):
        submission = selectors.api_submission_get(access=self.access(), pk=pk)
        return Response(serializers.FormSubmissionSerializer(submission).data)


# --- Conversions -------------------------------------------------------------------------------------------


class ConversionListCreate(MarketingView):
    required_scopes = {"GET": "marketing:read", "POST": "marketing:write"}

    @extend_schema(
        operation_id="conversions_list", tags=[CONVERSIONS], parameters=[serializers.ConversionListQuery],
        responses={200: serializers.ConversionPageSerializer, **READ_PROBLEMS}, summary="List conversions",
        description="Micro and macro conversions, newest first. Reps see those of the leads they may see; managers "
                    "and marketers also those of anonymous visitors (no lead yet).",
    )
    def get(self, request):
        query = self.query(serializers.ConversionListQuery)
        rows = selectors.api_conversion_list(access=self.access(), filters=query)
        return self.page_by_time(rows, query, "occurred_at", serializers.ConversionSerializer)

    @extend_schema(
        operation_id="conversions_create", tags=[CONVERSIONS], request=serializers.ConversionBody,
        parameters=[IDEMPOTENCY_PARAMETER], summary="Record a conversion on a lead",
        description="The lead's owner, a marketer or a manager may. `kind` is a conversion kind's slug (an unknown "
                    "one is a 422 naming `kind`); `occurred_at` defaults to now and cannot be in the future.",
        responses={201: serializers.ConversionSerializer, **problems(400, 401, 403, 404, 422, 429)},
    )
    @idempotent
    def post(self, request):
        data = self.body(serializers.ConversionBody)
        lead = selectors.api_body_lead_get(access=self.access(), pk=data["lead"])
        conversion = lead_services.conversion_record(
            kind=data["kind"], lead=lead, resource=data.get("resource"), value=data.get("value"),
            at=data.get("occurred_at"), by=request.user,
        )
        fresh = selectors.api_conversion_get(access=self.access(), pk=conversion.pk)
        return Response(serializers.ConversionSerializer(fresh).data, status=status.HTTP_201_CREATED)


class ConversionDetail(MarketingView):
    required_scopes = {"GET": "marketing:read"}

    @extend_schema(operation_id="conversions_retrieve", tags=[CONVERSIONS], summary="A conversion",
                   responses={200: serializers.ConversionSerializer, **ONE_PROBLEMS})
    def get(self, request, pk):
        return Response(serializers.ConversionSerializer(selectors.api_conversion_get(access=self.access(), pk=pk)).data)


# --- Campaigns -------------------------------------------------------------------------------------------


class CampaignView(MarketingView):
    def show_campaign(self, pk, code=status.HTTP_200_OK):
        return Response(serializers.CampaignSerializer(selectors.api_campaign_get(pk=pk)).data, status=code)


class CampaignListCreate(CampaignView):
    required_scopes = {"GET": "marketing:read", "POST": "marketing:write"}

    @extend_schema(
        operation_id="campaigns_list", tags=[CAMPAIGNS], parameters=[serializers.CampaignListQuery],
        responses={200: serializers.CampaignPageSerializer, **READ_PROBLEMS}, summary="List campaigns",
        description="Every campaign, oldest first (by id): every role reads them.",
    )
    def get(self, request):
        query = self.query(serializers.CampaignListQuery)
        return self.page_by_id(selectors.api_campaign_list(filters=query), query, "campaigns",
                               serializers.CampaignSerializer)

    @extend_schema(
        operation_id="campaigns_create", tags=[CAMPAIGNS], request=serializers.CampaignCreateBody,
        parameters=[IDEMPOTENCY_PARAMETER], summary="Create a campaign (marketers, managers)",
        description="The slug is its utm_campaign value, unique in any case; it cannot end before it starts. "
                    "A broken rule is a 422 naming the field.",
        responses={201: serializers.CampaignSerializer, **problems(400, 401, 403, 422, 429)},
    )
    @idempotent
    def post(self, request):
        check_may_manage_campaigns(request.user)
        data = self.body(serializers.CampaignCreateBody)
        campaign = campaign_services.campaign_create(by=request.user, **data)
        return self.show_campaign(campaign.pk, status.HTTP_201_CREATED)


class CampaignDetail(CampaignView):
    required_scopes = {"GET": "marketing:read", "PATCH": "marketing:write"}

    @extend_schema(operation_id="campaigns_retrieve", tags=[CAMPAIGNS], summary="A campaign",
                   responses={200: serializers.CampaignSerializer, **ONE_PROBLEMS})
    def get(self, request, pk):
        return self.show_campaign(pk)

    @extend_schema(
        operation_id="campaigns_update", tags=[CAMPAIGNS], request=serializers.CampaignUpdateBody,
        summary="Change a campaign (marketers, managers)", description="The fields given; the rules of creating.",
        responses={200: serializers.CampaignSerializer, **problems(400, 401, 403, 404, 422, 429)},
    )
    def patch(self, request, pk):
        campaign = selectors.api_campaign_get(pk=pk)
        check_may_manage_campaigns(request.user)
        data = self.body(serializers.CampaignUpdateBody)
        if data:
            campaign_services.campaign_update(campaign=campaign, by=request.user, **data)
        return self.show_campaign(campaign.pk)


# --- Spend ------------------------------------------------------------------------------------------------


class SpendListCreate(MarketingView):
    required_scopes = {"GET": "marketing:read", "POST": "marketing:write"}

    @extend_schema(
        operation_id="campaign_spend_list", tags=[SPEND], parameters=[serializers.SpendListQuery],
        responses={200: serializers.SpendPageSerializer, **READ_PROBLEMS}, summary="List campaign spend",
        description="What campaigns cost, a row per period, oldest first (by id); `period_from`/`period_to` keep "
                    "the rows whose period touches that range.",
    )
    def get(self, request):
        query = self.query(serializers.SpendListQuery)
        return self.page_by_id(selectors.api_spend_list(filters=query), query, "campaign_spend",
                               serializers.SpendSerializer)

    @extend_schema(
        operation_id="campaign_spend_create", tags=[SPEND], request=serializers.SpendCreateBody,
        parameters=[IDEMPOTENCY_PARAMETER], summary="Record a campaign's spend for a period (marketers, managers)",
        description="A period that overlaps another row of the campaign is a 422 naming `period_start` (cost per "
                    "lead would count those days twice); an end before the start names `period_end`.",
        responses={201: serializers.SpendSerializer, **problems(400, 401, 403, 422, 429)},
    )
    @idempotent
    def post(self, request):
        check_may_manage_campaigns(request.user)
        data = self.body(serializers.SpendCreateBody)
        spend = campaign_services.spend_record(by=request.user, **data)
        return Response(serializers.SpendSerializer(selectors.api_spend_get(pk=spend.pk)).data,
                        status=status.HTTP_201_CREATED)


class SpendDetail(MarketingView):
    http_method_names = ["get", "patch", "delete"]
    required_scopes = {"GET": "marketing:read", "PATCH": "marketing:write", "DELETE": "marketing:write"}

    @extend_schema(operation_id="campaign_spend_retrieve", tags=[SPEND], summary="A spend row",
                   responses={200: serializers.SpendSerializer, **ONE_PROBLEMS})
    def get(self, request, pk):
        return Response(serializers.SpendSerializer(selectors.api_spend_get(pk=pk)).data)

    @extend_schema(
        operation_id="campaign_spend_update", tags=[SPEND], request=serializers.SpendUpdateBody,
        summary="Change a spend row (marketers, managers)", description="The fields given; the rules of recording.",
        responses={200: serializers.SpendSerializer, **problems(400, 401, 403, 404, 422, 429)},
    )
    def patch(self, request, pk):
        spend = selectors.api_spend_get(pk=pk)
        check_may_manage_campaigns(request.user)
        data = self.body(serializers.SpendUpdateBody)
        if data:
            campaign_services.spend_update(spend=spend, by=request.user, **data)
        return Response(serializers.SpendSerializer(selectors.api_spend_get(pk=spend.pk)).data)

    @extend_schema(operation_id="campaign_spend_delete", tags=[SPEND], request=None,
                   summary="Delete a spend row (marketers, managers)",
                   responses={204: None, **problems(401, 403, 404, 429)})
    def delete(self, request, pk):
        spend = selectors.api_spend_get(pk=pk)
        check_may_manage_campaigns(request.user)
        campaign_services.spend_delete(spend=spend, by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
