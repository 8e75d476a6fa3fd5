"""The REST API's accounts and money: companies, deals, customers. As the lead endpoints (api.views): each parses
its input, asks the policy through the selectors, calls one service.

A deal or customer about a lead the token's user may not see is a 404; one they see but may not change is a
403 with the policy's reason.
"""

from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from leads import services as lead_services
from leads.deals import deal_change_stage

from . import sales_selectors as selectors
from . import sales_serializers as serializers
from .idempotency import idempotent
from .schema import problems
from .views import IDEMPOTENCY_PARAMETER, ApiView

COMPANIES, DEALS, CUSTOMERS = "companies", "deals", "customers"


class SalesApiView(ApiView):
    """The sales records' views (the paging they share is ApiView.page)."""


# --- Companies ------------------------------------------------------------------------------------


class CompanyListCreate(SalesApiView):
    required_scopes = {"GET": "companies:read", "POST": "companies:write"}

    @extend_schema(
        operation_id="companies_list", tags=[COMPANIES], parameters=[serializers.CompanyListQuery],
        responses={200: serializers.CompanyPage, **problems(400, 401, 403, 429)}, summary="List companies",
        description="Every company (accounts are the team's), newest first; `q` searches the name and web domain.",
    )
    def get(self, request):
        query = self.query(serializers.CompanyListQuery)
        companies = selectors.api_company_list(access=self.access(), q=query.get("q"))
        return self.page(companies, filters=query, field="created_at", descending=True,
                         serializer=serializers.CompanySerializer, ordering="companies:-created_at")

    @extend_schema(
        operation_id="companies_create", tags=[COMPANIES], request=serializers.CompanyCreateBody,
        parameters=[IDEMPOTENCY_PARAMETER], summary="Create a company",
        description="Sales reps and managers. One company per name (any case) and per web domain: a second is a "
                    "422 naming `name` or `domain` and the company that has it.",
        responses={201: serializers.CompanySerializer, **problems(400, 401, 403, 422, 429)},
    )
    @idempotent
    def post(self, request):
        data = self.body(serializers.CompanyCreateBody)
        company = lead_services.company_create(by=request.user, **data)
        return Response(serializers.CompanySerializer(company).data, status=status.HTTP_201_CREATED)


class CompanyDetail(SalesApiView):
    required_scopes = {"GET": "companies:read", "PATCH": "companies:write"}

    def company(self, pk):
        return selectors.api_company_get(access=self.access(), pk=pk)

    @extend_schema(operation_id="companies_retrieve", tags=[COMPANIES], summary="A company",
                   responses={200: serializers.CompanySerializer, **problems(401, 403, 404, 429)})
    def get(self, request, pk):
        return Response(serializers.CompanySerializer(self.company(pk)).data)

    @extend_schema(
        operation_id="companies_update", tags=[COMPANIES], request=serializers.CompanyUpdateBody,
        summary="Change a company", description="Sales reps and managers; a rename follows to its leads' search.",
        responses={200: serializers.CompanySerializer, **problems(400, 401, 403, 404, 422, 429)},
    )
    def patch(self, request, pk):
        company = self.company(pk)
        data = self.body(serializers.CompanyUpdateBody)
        lead_services.company_update(company=company, by=request.user, **data)
        return Response(serializers.CompanySerializer(self.company(pk)).data)


# --- Deals ---------------------------------------------------------------------------------------


class DealListCreate(SalesApiView):
    required_scopes = {"GET": "deals:read", "POST": "deals:write"}

    @extend_schema(
        operation_id="deals_list", tags=[DEALS], parameters=[serializers.DealListQuery],
        responses={200: serializers.DealPage, **problems(400, 401, 403, 404, 429)}, summary="List deals",
        description="The deals on the leads you may see, newest first; by `status`, `owner`, `lead` and close time.",
    )
    def get(self, request):
        query = self.query(serializers.DealListQuery)
        if query.get("lead") is not None:
            self.lead(query["lead"])  # another rep's lead is a 404, as everywhere
        deals = selectors.api_deal_list(access=self.access(), filters=query)
        return self.page(deals, filters=query, field="created_at", descending=True,
                         serializer=serializers.DealSerializer, ordering="deals:-created_at")

    @extend_schema(
        operation_id="deals_create", tags=[DEALS], request=serializers.DealCreateBody,
        parameters=[IDEMPOTENCY_PARAMETER], summary="Open a deal for a lead",
        description="The lead moves to Opportunity if it was before it; a customer may get more deals (upsell); a "
                    "lost or disqualified lead is reopened first (422 naming `lead`). A deal is won by converting "
                    "its lead (`POST /api/v1/leads/{id}/convert/`).",
        responses={201: serializers.DealSerializer, **problems(400, 401, 403, 404, 422, 429)},
    )
    @idempotent
    def post(self, request):
        data = self.body(serializers.DealCreateBody)
        lead = self.lead(data.pop("lead"))
        deal = lead_services.deal_open(lead=lead, by=request.user, **data)
        fresh = selectors.api_deal_get(access=self.access(), pk=deal.pk)
        return Response(serializers.DealSerializer(fresh).data, status=status.HTTP_201_CREATED)


class DealDetail(SalesApiView):
    required_scopes = {"GET": "deals:read", "PATCH": "deals:write"}

    def deal(self, pk):
        return selectors.api_deal_get(access=self.access(), pk=pk)

    @extend_schema(operation_id="deals_retrieve", tags=[DEALS], summary="A deal",
                   responses={200: serializers.DealSerializer, **problems(401, 403, 404, 429)})
    def get(self, request, pk):
        return Response(serializers.DealSerializer(self.deal(pk)).data)

    @extend_schema(
        operation_id="deals_update", tags=[DEALS], request=serializers.DealUpdateBody, summary="Change a deal",
        description="Its lead's owner or a manager. A won or lost deal is history: only `expected_close_on` "
                    "may change (else 422). `stage` moves an open deal to another deal stage; the terms and the "
                    "move are saved together or not at all.",
        responses={200: serializers.DealSerializer, **problems(400, 401, 403, 404, 422, 429)},
    )
    def patch(self, request, pk):
        deal = self.deal(pk)
        data = self.body(serializers.DealUpdateBody)
        stage = data.pop("stage", None)
        with transaction.atomic():
            if data:
                lead_services.deal_update(deal=deal, by=request.user, **data)
            if stage is not None and stage.pk != deal.stage_id:
                deal_change_stage(deal=deal, stage=stage, by=request.user)
        return Response(serializers.DealSerializer(self.deal(pk)).data)


class DealLose(SalesApiView):
    required_scopes = {"POST": "deals:write"}

    @extend_schema(
        operation_id="deals_mark_lost", tags=[DEALS], request=serializers.LoseBody, summary="Mark a deal lost",
        description="With the `reason`. When it was its lead's last open deal, the lead (an opportunity) is "
                    "lost too. A deal already closed is a 422 naming `status`.",
        responses={200: serializers.DealSerializer, **problems(400, 401, 403, 404, 422, 429)},
    )
    def post(self, request, pk):
        deal = selectors.api_deal_get(access=self.access(), pk=pk)
        data = self.body(serializers.LoseBody)
        with transaction.atomic():
            lead_services.deal_mark_lost(deal=deal, reason=data["reason"], by=request.user)
        return Response(serializers.DealSerializer(selectors.api_deal_get(access=self.access(), pk=pk)).data)


# --- Customers -------------------------------------------------------------------------------------


class CustomerList(SalesApiView):
    required_scopes = {"GET": "companies:read"}

    @extend_schema(
        operation_id="customers_list", tags=[CUSTOMERS], parameters=[serializers.CustomerListQuery],
        responses={200: serializers.CustomerPage, **problems(400, 401, 403, 429)}, summary="List customers",
        description="Newest customer first, each with its deals' totals by currency. Managers and marketers see "
                    "every customer; a sales rep those with a deal on a lead they may see.",
    )
    def get(self, request):
        query = self.query(serializers.CustomerListQuery)
        access = self.access()
        customers = selectors.api_customer_list(access=access, q=query.get("q"))
        return self.page(customers, filters=query, field="became_customer_at", descending=True,
                         serializer=serializers.CustomerSerializer, ordering="customers:-became_customer_at",
                         prepare=lambda rows: selectors.customers_with_totals(rows, access=access))


class CustomerDetail(SalesApiView):
    required_scopes = {"GET": "companies:read"}

    @extend_schema(operation_id="customers_retrieve", tags=[CUSTOMERS], summary="A customer, with its deals' totals",
                   responses={200: serializers.CustomerSerializer, **problems(401, 403, 404, 429)})
    def get(self, request, pk):
        access = self.access()
        customer = selectors.api_customer_get(access=access, pk=pk)
        [customer] = selectors.customers_with_totals([customer], access=access)
        return Response(serializers.CustomerSerializer(customer).data)
