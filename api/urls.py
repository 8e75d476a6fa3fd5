from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.urls import path, re_path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerSplitView

from . import marketing_views, pages, problems, sales_views, views, work_views

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
    path("api/v1/companies/", sales_views.CompanyListCreate.as_view(), name="company_list"),
    path("api/v1/companies/<int:pk>/", sales_views.CompanyDetail.as_view(), name="company_detail"),
    path("api/v1/customers/", sales_views.CustomerList.as_view(), name="customer_list"),
    path("api/v1/customers/<int:pk>/", sales_views.CustomerDetail.as_view(), name="customer_detail"),
    path("api/v1/deals/", sales_views.DealListCreate.as_view(), name="deal_list"),
    path("api/v1/deals/<int:pk>/", sales_views.DealDetail.as_view(), name="deal_detail"),
    path("api/v1/deals/<int:pk>/lose/", sales_views.DealLose.as_view(), name="deal_lose"),
    path("api/v1/activities/", work_views.ActivityList.as_view(), name="activity_list"),
    path("api/v1/activities/calls/", work_views.CallCreate.as_view(), name="activity_call"),
    path("api/v1/activities/notes/", work_views.NoteCreate.as_view(), name="activity_note"),
    path("api/v1/activities/meetings/", work_views.MeetingCreate.as_view(), name="activity_meeting"),
    path("api/v1/activities/social/", work_views.SocialTouchCreate.as_view(), name="activity_social"),
    path("api/v1/objections/", work_views.ObjectionListCreate.as_view(), name="objection_list"),
    path("api/v1/objections/<int:pk>/resolve/", work_views.ObjectionResolve.as_view(), name="objection_resolve"),
    path("api/v1/tasks/", work_views.TaskListCreate.as_view(), name="task_list"),
    path("api/v1/tasks/<int:pk>/", work_views.TaskDetail.as_view(), name="task_detail"),
    path("api/v1/tasks/<int:pk>/snooze/", work_views.TaskSnooze.as_view(), name="task_snooze"),
    path("api/v1/tasks/<int:pk>/complete/", work_views.TaskComplete.as_view(), name="task_complete"),
    path("api/v1/sequences/", marketing_views.SequenceList.as_view(), name="sequence_list"),
    path("api/v1/sequences/<int:pk>/", marketing_views.SequenceDetail.as_view(), name="sequence_detail"),
    path("api/v1/enrollments/", marketing_views.EnrollmentListCreate.as_view(), name="enrollment_list"),
    path("api/v1/enrollments/<int:pk>/", marketing_views.EnrollmentDetail.as_view(), name="enrollment_detail"),
    path("api/v1/enrollments/<int:pk>/pause/", marketing_views.EnrollmentPause.as_view(), name="enrollment_pause"),
    path("api/v1/enrollments/<int:pk>/resume/", marketing_views.EnrollmentResume.as_view(), name="enrollment_resume"),
    path("api/v1/enrollments/<int:pk>/remove/", marketing_views.EnrollmentRemove.as_view(), name="enrollment_remove"),
    path("api/v1/form-submissions/", marketing_views.FormSubmissionList.as_view(), name="form_submission_list"),
    path("api/v1/form-submissions/<int:pk>/", marketing_views.FormSubmissionDetail.as_view(), name="form_submission_detail"),
    path("api/v1/conversions/", marketing_views.ConversionListCreate.as_view(), name="conversion_list"),
    path("api/v1/conversions/<int:pk>/", marketing_views.ConversionDetail.as_view(), name="conversion_detail"),
    path("api/v1/campaigns/", marketing_views.CampaignListCreate.as_view(), name="campaign_list"),
    path("api/v1/campaigns/<int:pk>/", marketing_views.CampaignDetail.as_view(), name="campaign_detail"),
    path("api/v1/campaign-spend/", marketing_views.SpendListCreate.as_view(), name="spend_list"),
    path("api/v1/campaign-spend/<int:pk>/", marketing_views.SpendDetail.as_view(), name="spend_detail"),
    # Anything else under /api/v1/ is a 404 in problem details, not the site's HTML page.
    re_path(r"^api/v1/", problems.not_found),
    path("api/schema/", SpectacularJSONAPIView.as_view(authentication_classes=[], permission_classes=[],
                                                       throttle_classes=[]), name="schema"),
    path("api/docs/", DOCS, name="docs"),
    path("account/api-tokens/", pages.token_list, name="tokens"),
    path("account/api-tokens/<int:pk>/revoke/", pages.token_revoke, name="token_revoke"),
]
