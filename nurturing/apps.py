from django.apps import AppConfig


class NurturingConfig(AppConfig):
    name = "nurturing"
    verbose_name = "Nurturing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # leads.signals.lead_stage_changed -> stop the sequences of a lead that
        # converted, was lost or reached a sequence's goal (nurturing/handlers.py).
        from leads.signals import activity_logged, lead_stage_changed, leads_merging, leads_unmerging

        from . import checks  # noqa: F401  (registers the checks)
        from .handlers import (
            move_rows_back_on_unmerge,
            move_rows_on_merge,
            stop_sequences_on_meeting,
            stop_sequences_on_stage_change,
        )

        lead_stage_changed.connect(stop_sequences_on_stage_change, dispatch_uid="nurturing.stop_sequences")
        # leads.signals.activity_logged -> a logged meeting ends the lead's sequences.
        activity_logged.connect(stop_sequences_on_meeting, dispatch_uid="nurturing.stop_on_meeting")
        # leads.signals.leads_merging / leads_unmerging -> enrollments and email events follow
        # the person to the lead kept, and back when the merge is undone.
        leads_merging.connect(move_rows_on_merge, dispatch_uid="nurturing.move_on_merge")
        leads_unmerging.connect(move_rows_back_on_unmerge, dispatch_uid="nurturing.move_back_on_unmerge")

        # anymail's webhook signals -> engagement events (nurturing/webhooks.py).
        from anymail.signals import inbound, tracking

        from .webhooks import on_inbound, on_tracking

        tracking.connect(on_tracking, dispatch_uid="nurturing.tracking")
        inbound.connect(on_inbound, dispatch_uid="nurturing.inbound")
