"""Campaigns and what they cost: every write to them, for the admin and the API alike.

Each service checks the acting user (marketers and managers; `by` None is the
system), validates first and raises `ValidationError` keyed by field, writes in
one transaction and records an event. Spend is the numerator of cost per lead:
two rows of one campaign whose periods overlap would count the same days
twice, so they are refused (under a lock on the campaign, so that two requests
at once cannot both slip in).
"""

from datetime import date
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db import transaction

from core.events import Actor, EventType, event_record
from core.policy import check_may_manage_campaigns

from .models import Campaign, CampaignSpend, Persona, Source

_CAMPAIGN_FIELDS = frozenset({"name", "slug", "source", "medium", "persona", "starts_on", "ends_on"})
_SPEND_FIELDS = frozenset({"period_start", "period_end", "amount", "currency"})
_MAX_AMOUNT = Decimal("1e10")


def _unknown(fields: dict, known: frozenset) -> None:
    unknown = sorted(set(fields) - known)
    if unknown:
        raise TypeError(f"Unknown field(s): {', '.join(unknown)}")


# --- Campaigns ----------------------------------------------------------------------------------------


def campaign_check(*, name: str, slug: str, medium: str = "", source=None, persona=None, starts_on: date | None = None,
                   ends_on: date | None = None, exclude_pk: int | None = None) -> None:
    """Raise a ValidationError naming every field that is wrong: a name, a slug free among campaigns (in any case,
    as it is matched to utm_campaign), an end not before the start."""
    errors = {}
    if not (name or "").strip():
        errors["name"] = ["Give the campaign a name."]
    elif len(name) > 200:
        errors["name"] = ["Use at most 200 characters."]
    if not slug:
        errors["slug"] = ["Give the campaign a slug: its utm_campaign value, e.g. spring-webinar."]
    elif len(slug) > 100:
        errors["slug"] = ["Use at most 100 characters."]
    else:
        try:
            validate_slug(slug)
        except ValidationError:
            errors["slug"] = ["Use only letters, digits, hyphens and underscores, e.g. spring-webinar."]
        else:
            taken = Campaign.objects.filter(slug__iexact=slug)
            if exclude_pk is not None:
                taken = taken.exclude(pk=exclude_pk)
            if taken.exists():
                errors["slug"] = [f"Another campaign has the slug {slug!r}: choose another."]
    if len(medium or "") > 50:
        errors["medium"] = ["Use at most 50 characters."]
    if source is not None and not isinstance(source, Source):
        errors["source"] = ["Choose a source."]
    if persona is not None and not isinstance(persona, Persona):
        errors["persona"] = ["Choose a persona."]
    if starts_on is not None and ends_on is not None and ends_on < starts_on:
        errors["ends_on"] = ["The campaign cannot end before it starts."]
    if errors:
        raise ValidationError(errors)


def _campaign_values(campaign: Campaign) -> dict:
    return {name: getattr(campaign, name) for name in _CAMPAIGN_FIELDS}


@transaction.atomic
def campaign_create(*, by, name: str, slug: str, source: Source | None = None, medium: str = "",
                    persona: Persona | None = None, starts_on: date | None = None, ends_on: date | None = None) -> Campaign:
    """Make a campaign. Guarantees: `by` may manage campaigns; the slug is free (any case); it ends on or after
    its start; a `campaign.created` event names who did it."""
    check_may_manage_campaigns(by)
    values = {"name": (name or "").strip(), "slug": slug, "source": source, "medium": (medium or "").strip(),
              "persona": persona, "starts_on": starts_on, "ends_on": ends_on}
    campaign_check(**values)
    campaign = Campaign.objects.create(**values)
    event_record(EventType.CAMPAIGN_CREATED, actor=Actor.of(by), subject=campaign, payload={"slug": campaign.slug})
    return campaign


@transaction.atomic
def campaign_update(*, campaign: Campaign, by, **fields) -> Campaign:
    """Change a campaign's fields (those given); the same rules as campaign_create, checked on the result.

    A changed slug no longer matches the utm_campaign of visits still to come with the old one: the event
    keeps both, so a report can be explained.
    """
    check_may_manage_campaigns(by)
    _unknown(fields, _CAMPAIGN_FIELDS)
    locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
    before = _campaign_values(locked)
    values = {**before, **fields}
    values["name"] = (values["name"] or "").strip()
    values["medium"] = (values["medium"] or "").strip()
    campaign_check(**values, exclude_pk=locked.pk)
    changed = sorted(name for name in _CAMPAIGN_FIELDS if values[name] != before[name])
    if changed:
        for name in changed:
            setattr(locked, name, values[name])
        locked.save(update_fields=changed)
        payload = {"fields": changed}
        if "slug" in changed:
            payload["slug_before"] = before["slug"]
        event_record(EventType.CAMPAIGN_UPDATED, actor=Actor.of(by), subject=locked, payload=payload)
    for field in Campaign._meta.concrete_fields:
        setattr(campaign, field.attname, getattr(locked, field.attname))
    return campaign


@transaction.atomic
def campaign_delete(*, campaign: Campaign, by) -> None:
    """Delete a campaign made by mistake, with its spend rows (each recorded as deleted, as one by one). A campaign
    that leads came from is kept: their attribution would be lost (refused, naming the number of leads)."""
    check_may_manage_campaigns(by)
    locked = _lock(campaign)
    leads = locked.leads.count()
    if leads:
        raise ValidationError(f"{leads} lead(s) came from this campaign: it is kept so their attribution stays. "
                              "End it (set its end date) instead.")
    for spend in locked.spends.order_by("pk"):
        event_record(EventType.CAMPAIGN_SPEND_DELETED, actor=Actor.of(by), subject=spend, payload=_spend_payload(spend))
    event_record(EventType.CAMPAIGN_DELETED, actor=Actor.of(by), subject=locked, payload={"slug": locked.slug})
    locked.delete()


# --- Spend --------------------------------------------------------------------------------------------


def _clean_amount(value) -> Decimal:
    if value is None or value == "":
        raise ValidationError({"amount": ["Enter the amount spent (0 or more)."]})
    if isinstance(value, bool):
        raise ValidationError({"amount": ["Enter a number such as 1200.50."]})
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ValidationError({"amount": [f"{value!r} is not an amount: enter a number such as 1200.50."]}) from None
    if not amount.is_finite():
        raise ValidationError({"amount": ["Enter a finite amount."]})
    if amount < 0:
        raise ValidationError({"amount": ["Spend cannot be negative."]})
    if amount.as_tuple().exponent < -2:
        raise ValidationError({"amount": ["Use at most two decimal places."]})
    if amount >= _MAX_AMOUNT:
        raise ValidationError({"amount": ["That amount is too large: at most 9,999,999,999.99."]})
    return amount.quantize(Decimal("0.01"))  # as stored: the event's payload says what the row says


def _clean_currency(value) -> str:
    if value is None or value == "":
        currency = settings.CRM_DEFAULT_CURRENCY
    else:
        currency = value.strip().upper() if isinstance(value, str) else ""
    if len(currency) != 3 or not currency.isalpha() or not currency.isascii():
        raise ValidationError({"currency": ["Use a three-letter ISO 4217 currency code, such as EUR or USD."]})
    return currency


def spend_periods_check(periods) -> None:
    """Refuse periods (start, end) that overlap one another: the same days would be counted twice in cost per
    lead. For a form that edits several rows at once (the admin's inline)."""
    ordered = sorted((start, end) for start, end in periods if start is not None and end is not None)
    for (start, end), (next_start, next_end) in zip(ordered, ordered[1:], strict=False):
        if next_start <= end:
            raise ValidationError({"period_start": [
                f"{next_start:%Y-%m-%d} – {next_end:%Y-%m-%d} overlaps {start:%Y-%m-%d} – {end:%Y-%m-%d}: the same days "
                "would be counted twice in cost per lead. Change a period, or record the spend in one row."
            ]})


def spend_check(*, campaign: Campaign, period_start: date | None, period_end: date | None, exclude_pk: int | None = None) -> None:
    """The period is given, does not end before it starts, and overlaps no other spend row of the campaign."""
    errors = {}
    if not isinstance(period_start, date):
        errors["period_start"] = ["Enter the first day of the period (YYYY-MM-DD)."]
    if not isinstance(period_end, date):
        errors["period_end"] = ["Enter the last day of the period (YYYY-MM-DD)."]
    if errors:
        raise ValidationError(errors)
    if period_end < period_start:
        raise ValidationError({"period_end": ["The period cannot end before it starts."]})
    others = CampaignSpend.objects.filter(campaign=campaign, period_start__lte=period_end, period_end__gte=period_start)
    if exclude_pk is not None:
        others = others.exclude(pk=exclude_pk)
    clash = others.order_by("period_start").first()
    if clash is not None:
        raise ValidationError({"period_start": [
            f"This campaign already has spend for {clash.period_start:%Y-%m-%d} – {clash.period_end:%Y-%m-%d}, which "
            "overlaps this period: the same days would be counted twice in cost per lead. Change that row or this period."
        ]})


def _lock(campaign: Campaign) -> Campaign:
    # Spend rows of one campaign are checked against each other under this lock: two requests at once wait in turn.
    return Campaign.objects.select_for_update().get(pk=campaign.pk)


def _spend_payload(spend: CampaignSpend) -> dict:
    return {"campaign": spend.campaign_id, "period_start": spend.period_start.isoformat(),
            "period_end": spend.period_end.isoformat(), "amount": str(spend.amount), "currency": spend.currency}


@transaction.atomic
def spend_record(*, campaign: Campaign, by, period_start: date, period_end: date, amount, currency: str | None = None) -> CampaignSpend:
    """Record what a campaign cost over a period. Guarantees: `by` may manage campaigns; the period does not end
    before it starts nor overlap the campaign's other spend; the amount is 0 or more with at most two decimals;
    the currency is an ISO 4217 code (default CRM_DEFAULT_CURRENCY)."""
    check_may_manage_campaigns(by)
    errors = {}
    values = {}
    for name, clean, value in (("amount", _clean_amount, amount), ("currency", _clean_currency, currency)):
        try:
            values[name] = clean(value)
        except ValidationError as exc:
            errors.update(exc.message_dict)
    campaign = _lock(campaign)
    try:
        spend_check(campaign=campaign, period_start=period_start, period_end=period_end)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    spend = CampaignSpend.objects.create(campaign=campaign, period_start=period_start, period_end=period_end, **values)
    event_record(EventType.CAMPAIGN_SPEND_RECORDED, actor=Actor.of(by), subject=spend, payload=_spend_payload(spend))
    return spend


@transaction.atomic
def spend_update(*, spend: CampaignSpend, by, **fields) -> CampaignSpend:
    """Change a spend row's period, amount or currency (those given), under the rules of spend_record."""
    check_may_manage_campaigns(by)
    _unknown(fields, _SPEND_FIELDS)
    _lock(spend.campaign)
    locked = CampaignSpend.objects.get(pk=spend.pk)
    errors = {}
    values = {name: getattr(locked, name) for name in _SPEND_FIELDS}
    for name, clean in (("amount", _clean_amount), ("currency", _clean_currency)):
        if name in fields:
            try:
                values[name] = clean(fields[name])
            except ValidationError as exc:
                errors.update(exc.message_dict)
    values.update({name: fields[name] for name in ("period_start", "period_end") if name in fields})
    try:
        spend_check(campaign=locked.campaign, period_start=values["period_start"], period_end=values["period_end"],
                    exclude_pk=locked.pk)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    changed = sorted(name for name in _SPEND_FIELDS if values[name] != getattr(locked, name))
    if changed:
        for name in changed:
            setattr(locked, name, values[name])
        locked.save(update_fields=changed)
        event_record(EventType.CAMPAIGN_SPEND_UPDATED, actor=Actor.of(by), subject=locked,
                     payload={**_spend_payload(locked), "fields": changed})
    for field in CampaignSpend._meta.concrete_fields:
        setattr(spend, field.attname, getattr(locked, field.attname))
    return spend


@transaction.atomic
def spend_delete(*, spend: CampaignSpend, by) -> None:
    """Delete a spend row (entered by mistake); the event keeps what it said."""
    check_may_manage_campaigns(by)
    _lock(spend.campaign)
    payload = _spend_payload(spend)
    event_record(EventType.CAMPAIGN_SPEND_DELETED, actor=Actor.of(by), subject=spend, payload=payload)
    CampaignSpend.objects.filter(pk=spend.pk).delete()
