from django.urls import path

from . import views

app_name = "studio"

urlpatterns = [
    path("studio/", views.sequence_list, name="sequence_list"),
    path("studio/sequences/new/", views.sequence_new, name="sequence_new"),
    path("studio/sequences/<int:pk>/", views.sequence_detail, name="sequence_detail"),
    path("studio/sequences/<int:pk>/settings/", views.sequence_settings, name="sequence_settings"),
    path("studio/sequences/<int:pk>/versions/", views.sequence_versions, name="sequence_versions"),
    path("studio/sequences/<int:pk>/activate/", views.sequence_status_change, {"op": "activate"},
         name="sequence_activate"),
    path("studio/sequences/<int:pk>/pause/", views.sequence_status_change, {"op": "pause"}, name="sequence_pause"),
    path("studio/sequences/<int:pk>/reorder/", views.steps_reorder, name="steps_reorder"),
    path("studio/sequences/<int:pk>/steps/new/", views.step_new, name="step_new"),
    path("studio/sequences/<int:pk>/steps/new/preview/", views.step_preview, name="step_new_preview"),
    path("studio/steps/<int:step_pk>/", views.step_edit, name="step_edit"),
    path("studio/steps/<int:step_pk>/preview/", views.step_preview, name="step_preview"),
    path("studio/steps/<int:step_pk>/duplicate/", views.step_duplicate, name="step_duplicate"),
    path("studio/steps/<int:step_pk>/switch/<slug:state>/", views.step_switch, name="step_switch"),
    path("studio/steps/<int:step_pk>/move/<slug:direction>/", views.step_move, name="step_move"),
    path("studio/leads/search/", views.lead_search, name="lead_search"),
]
