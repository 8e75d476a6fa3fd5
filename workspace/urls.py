from django.urls import path

from . import board_views, bulk_views, lead_views, meeting_views, search_views, views

app_name = "workspace"

urlpatterns = [
    path("today/", views.today, name="today"),
    path("numbers/", views.numbers, name="numbers"),
    path("leads/", views.lead_list, name="lead_list"),
    path("leads/export/<slug:file_format>/", views.lead_export, name="lead_export"),
    # Making and changing leads (workspace.lead_views)
    path("leads/new/", lead_views.lead_new, name="lead_new"),
    path("leads/bulk/", bulk_views.lead_bulk, name="lead_bulk"),
    path("leads/views/", lead_views.saved_view_save, name="saved_view_save"),
    path("leads/views/<int:pk>/delete/", lead_views.saved_view_delete, name="saved_view_delete"),
    path("leads/<int:pk>/edit/", lead_views.lead_edit, name="lead_edit"),
    path("leads/<int:pk>/field/<slug:field>/", lead_views.lead_field, name="lead_field"),
    path("leads/<int:pk>/", views.lead_detail, name="lead_detail"),
    path("leads/<int:pk>/claim/", views.lead_claim, name="lead_claim"),
    path("leads/<int:pk>/tags/add/", views.lead_tag_add, name="lead_tag_add"),
    path("leads/<int:pk>/tags/remove/", views.lead_tag_remove, name="lead_tag_remove"),
    path("leads/<int:pk>/<slug:name>/", views.lead_action, name="lead_action"),
    path("enrollments/<int:pk>/<slug:op>/", views.enrollment_change, name="enrollment_change"),
    path("deals/<int:pk>/stage/", views.deal_stage, name="deal_stage"),
    path("tasks/", views.task_list, name="task_list"),
    path("meetings/<int:pk>/<slug:outcome>/", meeting_views.meeting_mark, name="meeting_mark"),
    path("availability/", meeting_views.availability, name="availability"),
    path("tasks/<int:pk>/done/", views.task_done, name="task_done"),
    path("tasks/<int:pk>/snooze/", views.task_snooze, name="task_snooze"),
    path("tasks/<int:pk>/undo/", views.task_undo, name="task_undo"),
    # Global search, from every page's nav.
    path("search/", search_views.global_search, name="search"),
    # The pipeline board
    path("board/", board_views.board, name="board"),
    path("board/columns/<slug:key>/", board_views.board_column, name="board_column"),
    path("board/heads/", board_views.board_heads, name="board_heads"),
    path("board/leads/<int:pk>/move/", board_views.board_lead_move, name="board_lead_move"),
    path("board/deals/<int:pk>/move/", board_views.board_deal_move, name="board_deal_move"),
]
