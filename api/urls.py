from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.urls import path, re_path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerSplitView

from . import pages, problems, views

app_name = "api"

# Swagger UI, from the app's static files, its settings in a script file of its own (no inline script).
# It styles its panels with inline styles, so this one page allows them; scripts stay 'self' only.
DOCS = csp_update({"style-src": [UNSAFE_INLINE]})(
    SpectacularSwaggerSplitView.as_view(url_name="api:schema", authentication_classes=[], permission_classes=[],
                                        throttle_classes=[])
)

urlpatterns = [
    path("api/v1/leads/", views.LeadListCreate.as_view(), name="lead_list"),
    path("api/v1/leads/<int:pk>/", views.LeadDetail.as_view(), name="lead_detail"),
    path("api/v1/leads/<int:pk>/assign/", views.LeadAssign.as_view(), name="lead_assign"),
    path("api/v1/leads/<int:pk>/claim/", views.LeadClaim.as_view(), name="lead_claim"),
    path("api/v1/leads/<int:pk>/stage/", views.LeadStage.as_view(), name="lead_stage"),
    path("api/v1/leads/<int:pk>/convert/", views.LeadConvert.as_view(), name="lead_convert"),
    path("api/v1/leads/<int:pk>/merge/", views.LeadMerge.as_view(), name="lead_merge"),
    path("api/v1/merges/<int:pk>/undo/", views.MergeUndo.as_view(), name="merge_undo"),
    path("api/v1/events/", views.EventList.as_view(), name="event_list"),
    # Anything else under /api/v1/ is a 404 in problem details, not the site's HTML page.
    re_path(r"^api/v1/", problems.not_found),
    path("api/schema/", SpectacularJSONAPIView.as_view(authentication_classes=[], permission_classes=[],
                                                       throttle_classes=[]), name="schema"),
    path("api/docs/", DOCS, name="docs"),
    path("account/api-tokens/", pages.token_list, name="tokens"),
    path("account/api-tokens/<int:pk>/revoke/", pages.token_revoke, name="token_revoke"),
]
