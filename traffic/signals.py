"""Signals the traffic app sends, for the apps standing on it.

page_views_stored(sender=PageView, lead_ids)
    Sent once page views of known leads (human visitors linked to a lead) have been stored and committed, with
    those leads' ids. The scoring app handles it (scoring/apps.py): a page rule may reward the pages. Each
    receiver runs on its own; one that fails is logged (logger "traffic.signals"), never failing the ingestion.
"""

import logging

from django.db import transaction
from django.dispatch import Signal

logger = logging.getLogger(__name__)
page_views_stored = Signal()


def page_views_stored_send(lead_ids: set[int]) -> None:
    if not lead_ids or not page_views_stored.has_listeners():
        return

    def send():
        for receiver, result in page_views_stored.send_robust(sender=None, lead_ids=lead_ids):
            if isinstance(result, Exception):
                logger.error("page_views_stored: %r failed for leads %s", receiver, sorted(lead_ids)[:20],
                             exc_info=(type(result), result, result.__traceback__))

    transaction.on_commit(send)
