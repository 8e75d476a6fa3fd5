"""The REST API's endpoints. Each parses its input, asks the policy (through the selectors), calls one service.

A lead the token's user may not see is a 404, as on the pages; one they see
but may not change is a 403 with the policy's reason.
"""

from django.conf import settings
from django.db import transaction
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.events import acting_through_end, acting_through_start
from core.policy import access_for, check_may_merge_leads, check_may_work
from leads import services as lead_services

from . import selectors, serializers
from .idempotency import HEADER, idempotent
from .pagination import keyset_page, page_size
from .schema import problems

LEADS = "leads"


class ApiView(APIView):
    http_method_names = ["get", "post", "patch"]
    _acting = None

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        # Authenticated and allowed: what the services record from here on names the token too.
        self._acting = acting_through_start(api_token=request.auth.pk)

    def finalize_response(self, request, response, *args, **kwargs):
        if self._acting is not None:
            acting_through_end(self._acting)
            self._acting = None
        return super().finalize_response(request, response, *args, **kwargs)

    def access(self):
        return access_for(self.request.user)

    def query(self, serializer_class):
        """The query string, parsed strictly: an unknown parameter is an error (a typo would otherwise widen a filter)."""
        parser = serializer_class(data=self.request.query_params)
        unknown = sorted(set(self.request.query_params) - set(parser.fields))
        if unknown:
            raise exceptions.ValidationError({name: ["Unknown query parameter."] for name in unknown})
        parser.is_valid(raise_exception=True)
        return parser.validated_data

    def body(self, serializer_class):
        parser = serializer_class(data=self.request.data)
        parser.is_valid(raise_exception=True)
        return parser.validated_data

    def page(self, rows, *, filters: dict, field: str, descending: bool, serializer, ordering: str,
             prepare=None) -> Response:
        """One page of `rows` by (`field`, id), after the query's cursor; `ordering` names the cursor's kind."""
        items, next_cursor = keyset_page(
            rows, field=field, descending=descending, cursor=filters.get("cursor"),
            size=page_size(filters.get("page_size")), ordering=ordering,
        )
        if prepare is not None:
            items = prepare(items)
        return Response({"results": serializer(items, many=True).data, "next_cursor": next_cursor})

    def lead(self, pk, action="view"):
        return selectors.api_lead_get(access=self.access(), pk=pk, action=action)

    def show(self, lead, code=status.HTTP_200_OK):
        fresh = selectors.api_lead_get(access=self.access(), pk=lead.pk)
        return Response(serializers.LeadSerializer(fresh).data, status=code)


IDEMPOTENCY_PARAMETER = OpenApiParameter(
    HEADER, str, OpenApiParameter.HEADER, required=False,
    description="Any unique string (a UUID): a retry with the same key and body returns the first response "
                "instead of creating again; for 24 hours.",
)


def _lead_fields(data: dict) -> dict:
    """The body as the lead services take it: the company by name."""
    fields = dict(data)
    if "company" in fields:
        fields["company"] = lead_services.company_for_name(fields["company"] or "")
    return fields


class LeadListCreate(ApiView):
    required_scopes = {"GET": "leads:read", "POST": "leads:write"}

    @extend_schema(
        operation_id="leads_list", tags=[LEADS], parameters=[serializers.LeadListQuery],
        responses={200: serializers.LeadPageSerializer, **problems(400, 401, 403, 429)},
        summary="List leads",
        description="Every lead you may see, as on the Leads page, newest first; filter, search and page with "
                    "`cursor` (from `next_cursor`). `page_size` is capped at the server's maximum.",
    )
    def get(self, request):
        filters = self.query(serializers.LeadListQuery)
        field, descending = serializers.LEAD_ORDERINGS[filters.get("ordering") or "-created_at"]
        leads = selectors.api_lead_list(access=self.access(), filters=filters)
        return self.page(leads, filters=filters, field=field, descending=descending,
                         serializer=serializers.LeadSerializer, ordering=filters.get("ordering") or "-created_at")

    @extend_schema(
        operation_id="leads_create", tags=[LEADS], request=serializers.LeadCreateBody,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={201: serializers.LeadSerializer, **problems(400, 401, 403, 422, 429)},
        summary="Create a lead",
        description="Through the same service as every other entry point: the email is unique among live leads "
                    "(a duplicate is a 422 naming `email`), and the lead needs an email or a phone.",
    )
    @idempotent
    def post(self, request):
        data = self.body(serializers.LeadCreateBody)
        access = self.access()
        # Without an owner, the lead is yours if you can own leads (the service refuses another owner unless
        # you may assign leads).
        owner = data.pop("owner", request.user if access.owns_leads else None)
        with transaction.atomic():
            lead = lead_services.lead_create(by=request.user, owner=owner, **_lead_fields(data))
        return self.show(lead, status.HTTP_201_CREATED)


class LeadDetail(ApiView):
    required_scopes = {"GET": "leads:read", "PATCH": "leads:write"}

    @extend_schema(operation_id="leads_retrieve", tags=[LEADS], summary="A lead",
                   responses={200: serializers.LeadSerializer, **problems(401, 403, 404, 429)})
    def get(self, request, pk):
        return Response(serializers.LeadSerializer(self.lead(pk)).data)

    @extend_schema(
        operation_id="leads_update", tags=[LEADS], request=serializers.LeadUpdateBody, summary="Change a lead",
        description="Contact and attribution details; the stage changes through `/stage/`, the owner through "
                    "`/assign/` or `/claim/`. Only the lead's owner or a manager may change it.",
        responses={200: serializers.LeadSerializer, **problems(400, 401, 403, 404, 422, 429)},
    )
    def patch(self, request, pk):
        lead = self.lead(pk)
        data = self.body(serializers.LeadUpdateBody)
        if not data:
            check_may_work(request.user, lead)  # nothing to change, but the same answer as a change would get
            return self.show(lead)
        with transaction.atomic():
            lead_services.lead_update(lead=lead, by=request.user, **_lead_fields(data))
        return self.show(lead)


class LeadAssign(ApiView):
    required_scopes = {"POST": "leads:write"}

    @extend_schema(operation_id="leads_assign", tags=[LEADS], request=serializers.AssignBody,
                   summary="Give a lead to a rep (managers)",
                   responses={200: serializers.LeadSerializer, **problems(400, 401, 403, 404, 422, 429)})
    def post(self, request, pk):
        lead = self.lead(pk)
        data = self.body(serializers.AssignBody)
        lead_services.lead_assign_owner(leads=[lead], owner=data["owner"], by=request.user)
        return self.show(lead)


class LeadClaim(ApiView):
    required_scopes = {"POST": "leads:write"}

    @extend_schema(operation_id="leads_claim", tags=[LEADS], request=None,
                   summary="Claim a lead from the unassigned pool",
                   responses={200: serializers.LeadSerializer, **problems(400, 401, 403, 404, 422, 429)})
    def post(self, request, pk):
        self.body(serializers.EmptyBody)
        lead = self.lead(pk, "claim")
        lead_services.lead_claim(lead=lead, by=request.user)
        return self.show(lead)


class LeadStage(ApiView):
    required_scopes = {"POST": "leads:write"}

    @extend_schema(
        operation_id="leads_change_stage", tags=[LEADS], request=serializers.StageBody,
        summary="Move a lead to another stage",
        description="Only the moves the pipeline allows from the lead's stage; lost and disqualified need a "
                    "`reason`; customer is reached by `/convert/`. A refused move is a 422 naming the field.",
        responses={200: serializers.LeadSerializer, **problems(400, 401, 403, 404, 422, 429)},
    )
    def post(self, request, pk):
        lead = self.lead(pk)
        data = self.body(serializers.StageBody)
        lead_services.lead_change_stage(lead=lead, to_status=data["to_status"], reason=data.get("reason", ""),
                                        by=request.user)
        return self.show(lead)


class LeadConvert(ApiView):
    required_scopes = {"POST": "leads:write"}

    @extend_schema(
        operation_id="leads_convert", tags=[LEADS], request=serializers.ConvertBody, parameters=[IDEMPOTENCY_PARAMETER],
        summary="Convert a lead to a customer with a won deal",
        responses={201: serializers.ConvertedSerializer, **problems(400, 401, 403, 404, 422, 429)},
    )
    @idempotent
    def post(self, request, pk):
        lead = self.lead(pk)
        data = self.body(serializers.ConvertBody)
        deal = lead_services.lead_convert_to_customer(lead=lead, by=request.user, **data)
        fresh = selectors.api_lead_get(access=self.access(), pk=lead.pk)
        body = {"lead": serializers.LeadSerializer(fresh).data, "deal": serializers.DealRef(deal).data}
        return Response(body, status=status.HTTP_201_CREATED)


class LeadMerge(ApiView):
    required_scopes = {"POST": "leads:write"}

    @extend_schema(
        operation_id="leads_merge", tags=[LEADS], request=serializers.MergeBody,
        summary="Merge another lead into this one (managers)",
        description="The other lead's history moves to this one and it is archived; see the README's merge rules.",
        responses={200: serializers.MergedSerializer, **problems(400, 401, 403, 404, 422, 429)},
    )
    def post(self, request, pk):
        keep = self.lead(pk)
        check_may_merge_leads(request.user)
        data = self.body(serializers.MergeBody)
        merge = lead_services.lead_merge(keep=keep, merge=data["merge"], by=request.user)
        fresh = selectors.api_lead_get(access=self.access(), pk=keep.pk)
        return Response({"lead": serializers.LeadSerializer(fresh).data, "merge_id": merge.pk})


class MergeUndo(ApiView):
    required_scopes = {"POST": "leads:write"}

    @extend_schema(
        operation_id="merges_undo", tags=[LEADS], request=None, summary="Undo a merge (managers)",
        description="The merged lead is live again with what moved from it; the kept lead gets back the fields the "
                    "merge filled unless they were changed since. Refused (422 naming `merge`, `keep` or `merged`) "
                    "once undone, or when either lead was erased or merged again since.",
        responses={200: serializers.LeadSerializer, **problems(400, 401, 403, 404, 422, 429)},
    )
    def post(self, request, pk):
        self.body(serializers.EmptyBody)
        check_may_merge_leads(request.user)
        merge = selectors.api_merge_get(pk=pk)
        restored = lead_services.lead_merge_undo(merge=merge, by=request.user)
        return self.show(restored)


class EventList(ApiView):
    required_scopes = {"GET": "events:read"}

    @extend_schema(
        operation_id="events_list", tags=["events"], parameters=[serializers.EventListQuery], summary="Read the event log",
        description="Events in id order after `after` (0 to start); keep `next_after` and read again. Events "
                    f"younger than {settings.CRM_EVENT_SETTLE_SECONDS:g} s are held back, so a change still "
                    "committing is never stepped over. Reps read the events of the leads they may see.",
        responses={200: serializers.EventPageSerializer, **problems(400, 401, 403, 429)},
    )
    def get(self, request):
        query = self.query(serializers.EventListQuery)
        after = query.get("after", 0)
        events = selectors.api_event_list(
            access=self.access(), after=after, limit=page_size(query.get("limit")),
            type=query.get("type"), lead_id=query.get("lead"),
        )
        return Response({
            "results": serializers.EventSerializer(events, many=True).data,
            "next_after": events[-1].id if events else after,
        })

