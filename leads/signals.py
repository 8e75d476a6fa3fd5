"""Signals the lead domain sends, for the apps standing on it.

lead_stage_changed(sender=Lead, lead_id, from_status, to_status, stage_change_id)
    Sent after the transaction that moved a lead commits. The nurturing app
    handles it (nurturing/apps.py) to stop a converted or lost lead's sequences.

activity_logged(sender=Activity, lead_id, activity_id, kind, author_id)
    Sent after the transaction that logged a call, note or meeting commits. The
    nurturing app handles it: a meeting the rep logged takes the lead out of
    its sequences (nobody wants an automated follow-up after a meeting).
"""

from django.dispatch import Signal

lead_stage_changed = Signal()
activity_logged = Signal()
