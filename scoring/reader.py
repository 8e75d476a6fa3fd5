"""Scores follow what happens: a reader of the event log (its own cursor) rescoring the leads that new events
concern; and the website's page views, which are not in the event log, through the traffic app's signal."""

import logging

from core.events import EventType, cursor_advance, cursor_position, events_after

from .services import scores_refresh

log = logging.getLogger(__name__)
CURSOR = "scoring.events"
_EMAIL = (EventType.EMAIL_OPENED, EventType.EMAIL_CLICKED, EventType.EMAIL_REPLIED)
EVENT_TYPES = (EventType.LEAD_CREATED, EventType.LEAD_UPDATED, EventType.LEAD_MERGED, EventType.LEAD_UNMERGED,
               EventType.FORM_SUBMITTED, *_EMAIL)


def scoring_events_run(*, limit: int = 500) -> int:
    """Rescore the leads of the events after this reader's cursor; returns how many events were read. A crash
    leaves the cursor where it was: the leads are rescored again, which changes nothing twice."""
    events = events_after(cursor_position(CURSOR), limit=limit, types=list(EVENT_TYPES))
    if not events:
        return 0
    lead_ids = {event.lead_id for event in events
                if event.lead_id and not (event.type in _EMAIL and (event.payload or {}).get("machine"))}
    if lead_ids:
        scores_refresh(lead_ids=sorted(lead_ids))
    cursor_advance(CURSOR, events[-1].pk)
    return len(events)


def on_page_views_stored(sender, lead_ids, **kwargs):
    """traffic.signals.page_views_stored -> the known leads who viewed pages are rescored (a page rule may reward
    those pages)."""
    scores_refresh(lead_ids=sorted(lead_ids))
