"""The qualification pipeline: its stages and the moves allowed between them.

This is the one place that says which stage a lead may move to next. The
stage service (`leads.services.lead_change_stage`), the admin, the reps' pages
and the nurturing engine all ask here.
"""

from django.db import models


class LeadStatus(models.TextChoices):
    NEW = "new", "New"
    CONTACTED = "contacted", "Contacted"
    NURTURING = "nurturing", "Nurturing"
    MQL = "mql", "MQL"
    SQL = "sql", "SQL"
    OPPORTUNITY = "opportunity", "Opportunity"
    CUSTOMER = "customer", "Customer"
    LOST = "lost", "Lost"
    DISQUALIFIED = "disqualified", "Disqualified"


S = LeadStatus

# The funnel, top to bottom. Reports and the pipeline summary use this order.
FUNNEL = (S.NEW, S.CONTACTED, S.NURTURING, S.MQL, S.SQL, S.OPPORTUNITY, S.CUSTOMER)
OPEN_STATUSES = frozenset(FUNNEL[:-1])
CLOSED_STATUSES = frozenset({S.CUSTOMER, S.LOST, S.DISQUALIFIED})
# Ending without a sale: the move needs a reason.
ENDED_STATUSES = frozenset({S.LOST, S.DISQUALIFIED})
_ENDINGS = (S.LOST, S.DISQUALIFIED)

# from -> the stages it may move to. Forward moves may skip stages (an inbound
# demo request can be an SQL on day one); the only backward move is recycling a
# qualified lead that is not ready into nurturing. Customer is reached only by
# converting (which records the won deal), and a customer stays a customer.
# Lost and disqualified leads can be reopened.
ALLOWED_MOVES: dict[str, tuple[str, ...]] = {
    S.NEW: (S.CONTACTED, S.NURTURING, S.MQL, S.SQL, S.OPPORTUNITY, S.CUSTOMER, *_ENDINGS),
    S.CONTACTED: (S.NURTURING, S.MQL, S.SQL, S.OPPORTUNITY, S.CUSTOMER, *_ENDINGS),
    S.NURTURING: (S.MQL, S.SQL, S.OPPORTUNITY, S.CUSTOMER, *_ENDINGS),
    S.MQL: (S.SQL, S.OPPORTUNITY, S.CUSTOMER, S.NURTURING, *_ENDINGS),
    S.SQL: (S.OPPORTUNITY, S.CUSTOMER, S.NURTURING, *_ENDINGS),
    S.OPPORTUNITY: (S.CUSTOMER, S.NURTURING, *_ENDINGS),
    S.CUSTOMER: (),
    S.LOST: (S.CONTACTED, S.NURTURING),
    S.DISQUALIFIED: (S.NEW, S.NURTURING),
}

# Moves into these stages need more than a reason: a service of their own.
NEEDS_CONVERSION = frozenset({S.CUSTOMER})


def allowed_moves(from_status: str) -> tuple[str, ...]:
    return ALLOWED_MOVES[LeadStatus(from_status)]


def is_move_allowed(from_status: str, to_status: str) -> bool:
    return to_status in allowed_moves(from_status)


def label(status: str) -> str:
    return LeadStatus(status).label


def describe_allowed_moves(from_status: str) -> str:
    moves = allowed_moves(from_status)
    if not moves:
        return f"{label(from_status)} is final: no moves are allowed from it."
    return f"Allowed moves from {label(from_status)}: {', '.join(label(m) for m in moves)}."
