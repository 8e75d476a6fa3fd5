"""Deal stages: the steps an open deal goes through, set by managers, and each deal's moves through them.

A deal opens in the first stage in use; its owner (or a manager) moves it to any other stage in use, each move
kept with who, when, how long the deal was in the stage it left, and a note; a won or lost deal keeps the stage
it closed in. The forecast weighs each open deal by its stage's probability.
"""

from datetime import datetime

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models.functions import Lower

from core.events import Actor, EventType, event_record
from core.policy import access_for, check_may_work

from .models import Deal, DealStage, DealStageChange


def deal_stage_first() -> DealStage | None:
    return DealStage.objects.filter(is_active=True).order_by("position", "pk").first()


def deal_stage_start(*, deal: Deal, by=None) -> None:
    """Put a deal just opened in the first stage in use (none in use: no stage), with its first history row."""
    first = deal_stage_first()
    if first is None:
        return
    deal.stage, deal.stage_entered_at = first, deal.created_at
    Deal.objects.filter(pk=deal.pk).update(stage=first, stage_entered_at=deal.created_at)
    DealStageChange.objects.create(deal=deal, to_stage=first, changed_at=deal.created_at, changed_by=by)


def deal_change_stage(*, deal: Deal, stage: DealStage, by=None, note: str = "", at: datetime | None = None) -> Deal:
    """Move an open deal to another stage in use. Guarantees: only who may work the deal's lead moves it; the
    history row says from, to, when (`at`: up to now, not before the deal entered its stage), who, how long in
    the stage left and why (`note`); `deal.stage_changed` is recorded. Won and lost are not stages: a deal is
    won by converting its lead, lost with a reason."""
    with transaction.atomic():
        stored = Deal.objects.select_for_update(of=("self",)).select_related("lead", "stage").get(pk=deal.pk)
        check_may_work(by, stored.lead)
        if stored.status != Deal.Status.OPEN:
            raise ValidationError({"stage": [f"The deal is {stored.get_status_display().lower()}: it stays in the "
                                             "stage it closed in."]})
        if not stage.is_active:
            raise ValidationError({"stage": [f"“{stage.name}” is not in use: choose a stage in use."]})
        if stored.stage_id == stage.pk:
            raise ValidationError({"stage": [f"The deal is already in “{stage.name}”."]})
        from .services import _when  # leads.services imports this module

        # Not in the future, nor before the deal entered its stage (a move made now after one dated a little
        # ahead is dated with it).
        now = _when(at, not_before=stored.stage_entered_at, since="the deal entered its current stage")
        change = DealStageChange.objects.create(
            deal=stored, from_stage=stored.stage, to_stage=stage, changed_at=now, changed_by=by, note=note.strip()[:300],
            time_in_from_stage=(now - stored.stage_entered_at) if stored.stage_entered_at else None)
        Deal.objects.filter(pk=stored.pk).update(stage=stage, stage_entered_at=now)
        deal.stage, deal.stage_entered_at = stage, now
        event_record(EventType.DEAL_STAGE_CHANGED, actor=Actor.of(by), lead_id=stored.lead_id, subject=change, at=now,
                     payload={"deal": stored.pk, "from": getattr(stored.stage, "name", None), "to": stage.name})
        return deal


def deal_stage_save(*, stage: DealStage, by=None) -> DealStage:
    """Add or change a deal stage: managers only (and the system). A name is unique in any case; the probability
    is a percentage; the last stage in use cannot be switched off (deals must open somewhere)."""
    if by is not None and not access_for(by).is_manager:
        raise PermissionDenied("Only a manager can change the deal stages.")
    errors = {}
    name = (stage.name or "").strip()
    if not name:
        errors["name"] = ["Name the stage, e.g. Proposal."]
    elif DealStage.objects.exclude(pk=stage.pk).annotate(key=Lower("name")).filter(key=name.lower()).exists():
        errors["name"] = [f"There is a stage “{name}” already (names are compared in any case)."]
    if stage.probability is None or not 0 <= stage.probability <= 100:
        errors["probability"] = ["Give the win probability as a percentage from 0 to 100."]
    if stage.pk and not stage.is_active and not DealStage.objects.filter(is_active=True).exclude(pk=stage.pk).exists():
        errors["is_active"] = ["Keep at least one stage in use: new deals open in the first one."]
    if errors:
        raise ValidationError(errors)
    stage.name = name
    stage.save()
    return stage
