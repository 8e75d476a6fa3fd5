"""Signals the lead domain sends, for the apps standing on it.

lead_stage_changed(sender=Lead, lead_id, from_status, to_status, stage_change_id)
    Sent after the transaction that moved a lead commits. The nurturing app
    handles it (nurturing/apps.py) to stop a converted or lost lead's sequences.
"""

from django.dispatch import Signal

lead_stage_changed = Signal()
