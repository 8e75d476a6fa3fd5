"""Signals the lead domain sends, for the apps standing on it.

The first two are sent with `send_after_commit`: once the change has
committed, each receiver runs on its own, and one that fails is logged
(logger "leads.signals") instead of failing a request, task or command whose
change already happened, or keeping the other receivers from running.

lead_stage_changed(sender=Lead, lead_id, from_status, to_status, stage_change_id)
    Sent after the transaction that moved a lead commits. The nurturing app
    handles it (nurturing/apps.py) to stop a converted or lost lead's sequences.

activity_logged(sender=Activity, lead_id, activity_id, kind, author_id)
    Sent after the transaction that logged a call, note or meeting commits. The
    nurturing app handles it: a meeting the rep logged takes the lead out of
    its sequences (nobody wants an automated follow-up after a meeting).

Two more are sent with `Signal.send`, inside the transaction, since what their
receivers do is part of the change: a receiver that fails rolls everything
back.

leads_merging(sender=Lead, keep, merge, by, moved)
    Sent by `leads.services.lead_merge` while both leads are locked, before
    the merged lead's events move to the kept one. Each app with rows that
    point at a lead moves the merged lead's rows to `keep` and adds their ids
    to `moved` (a dict: table label -> ids, e.g. moved["nurturing.enrollment"]),
    which the merge records, so the leads app knows nothing of those tables.
    The nurturing app handles it (nurturing/apps.py): enrollments and email
    events.

leads_unmerging(sender=Lead, keep, merged, by, moved)
    Sent by `leads.services.lead_merge_undo` with what the merge recorded:
    each app moves the rows it listed in `moved` back from `keep` to `merged`
    (those still on `keep`; rows added to `keep` since stay there).

person_erasing(sender=Lead, lead_ids, address, by, deleted)
    Sent by the erasure of a person (nurturing.privacy.person_erase) inside
    its transaction: each app standing on the leads erases what it holds of
    the person (`address` is the normalised email, "" if none) and adds what
    it deleted to `deleted` (a dict: what -> how many). The capture app
    handles it: the website's page views lose their link to the person, and
    quarantined submissions with the address are deleted. The notifications
    app deletes the notifications about the person.

person_exporting(sender=Lead, lead_ids, address, export)
    Sent by the export of everything about a person (nurturing.privacy.
    person_export): each app standing on the leads adds what it holds of the
    person to `export` (a dict; keys become top-level keys of the export). The
    capture app adds the first and last touches, conversions and the website's
    page views of the person's leads, and what was held back in quarantine.
"""

import logging

from django.db import transaction
from django.dispatch import Signal

logger = logging.getLogger(__name__)

lead_stage_changed = Signal()
activity_logged = Signal()
leads_merging = Signal()
leads_unmerging = Signal()
person_erasing = Signal()
person_exporting = Signal()


def send_after_commit(signal: Signal, name: str, **kwargs) -> None:
    """Send `signal` once the current transaction commits (at once outside one), every receiver on its own."""

    def send():
        for receiver, result in signal.send_robust(**kwargs):
            if isinstance(result, Exception):
                logger.error(
                    "%s: the receiver %s.%s failed after the change committed (%s)",
                    name, getattr(receiver, "__module__", "?"), getattr(receiver, "__qualname__", repr(receiver)),
                    ", ".join(f"{key}={value}" for key, value in kwargs.items() if key != "sender"),
                    exc_info=(type(result), result, result.__traceback__),
                )

    transaction.on_commit(send)
