"""Capture: a form submission becomes a lead (or updates the one it already is), with where it came from.

`capture_submit` holds every rule, whichever way the form came in (its hosted
page, a plain HTML form embedded in the team's site, the JSON endpoint, a
release from quarantine):

- the form is active and posted from a site it allows;
- the sender is under the rate limits (per address, per email);
- the fields are what the form defines, each valid (errors name the field);
- suspected spam (the honeypot filled, the form sent faster than a person
  can) is quarantined, never made a lead and never silently dropped; a forged
  or expired fill-time token is an error;
- an existing lead (the email in any case) gets the submission, the touch and
  the consent: never a duplicate row;
- the visitor's page views are linked to the lead, its first and last touch
  stored, the conversion recorded, and the consent kept with its wording and
  version;
- all in one transaction. What follows (the owner, a speed-to-lead task, the
  sequence, the resource's email) is done by capture.followups, reading the
  `form.submitted` event.
"""

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django.db import DatabaseError, transaction
from django.utils import timezone

from core.attribution import attribution_from_url
from core.emails import normalize_email
from core.events import Actor
from core.http import host_allowed
from core.models import ActorKind
from core.policy import access_for, check_may_run_forms
from core.ratelimit import RateLimit, hit
from leads import services as lead_services
from leads.models import FormSubmission, Lead
from leads.selectors import lead_duplicate_of
from traffic.queue import queue_for
from traffic.services import visitor_link, visitor_touches

from .captcha import captcha, captcha_verify
from .models import CaptureForm, Quarantine

log = logging.getLogger(__name__)

LEAD_FIELDS = {"first_name": 100, "last_name": 100, "email": 254, "phone": 40, "title": 150, "company": 200}
FIELD_TYPES = ("text", "email", "tel", "textarea", "checkbox", "select")
MAX_ANSWER = 2000


class CaptureRefused(Exception):
    """The submission is refused: `errors` name the fields ("" for the form as a whole); nothing was written."""

    def __init__(self, errors: dict[str, str], *, status: int = 400, retry_after: int = 0):
        super().__init__("; ".join(f"{k}: {v}" if k else v for k, v in errors.items()))
        self.errors, self.status, self.retry_after = errors, status, retry_after


@dataclass(frozen=True)
class CaptureContext:
    """Where and how the submission came: none of it is the person's answers."""

    page_url: str = ""
    referrer: str = ""
    landing_page: str = ""
    visitor_id: str = ""
    address: str = ""
    origin_host: str = ""  # the posting page's host ("" on the hosted page)
    hosted: bool = False
    fill_token: str | None = None  # None: the way it came offers no token (a plain HTML form embedded elsewhere)
    honeypot: str = ""
    captcha: str = ""  # the CAPTCHA provider's token, when the check is on


@dataclass
class CaptureResult:
    lead: Lead | None = None
    created: bool = False
    submission: object = None
    quarantine: Quarantine | None = None
    queued: bool = False  # taken: the worker writes it in a moment
    messages: list = field(default_factory=list)

    @property
    def quarantined(self) -> bool:
        return self.quarantine is not None


# --- The queue -------------------------------------------------------------------------------------


def capture_queue():
    """Where checked submissions wait for the worker (traffic.queue's Redis list or spool), or None: capture at once."""
    url = settings.CRM_CAPTURE_QUEUE_URL
    if url == "inline":
        return None
    return queue_for(url, key="crm:capture:queue", spool="capture")


# --- The form's definition ----------------------------------------------------------------------


def form_fields_check(fields) -> list[dict]:
    """The form's field list, checked: raises ValidationError naming what to fix."""
    if not isinstance(fields, list) or not fields:
        raise ValidationError({"fields": ["List the form's fields: at least an email or a phone field."]})
    names, problems = set(), []
    for position, spec in enumerate(fields, start=1):
        if not isinstance(spec, dict):
            problems.append(f"Field {position} is not a description of a field.")
            continue
        name, kind, maps_to = spec.get("name", ""), spec.get("type", "text"), spec.get("maps_to", "")
        if not isinstance(name, str) or not name.isidentifier() or name.startswith("crm_"):
            problems.append(f"Field {position}: give a name of letters, digits and _ (not starting with crm_).")
        elif name in names:
            problems.append(f"Field {position}: the name {name!r} is used twice.")
        names.add(name)
        if kind not in FIELD_TYPES:
            problems.append(f"Field {position}: the type is one of {', '.join(FIELD_TYPES)}.")
        if maps_to and maps_to not in LEAD_FIELDS:
            problems.append(f"Field {position}: maps_to is one of {', '.join(LEAD_FIELDS)}, or empty for a custom answer.")
        if kind == "select" and not (isinstance(spec.get("choices"), list) and spec["choices"]):
            problems.append(f"Field {position}: a select needs its choices.")
    if not {spec.get("maps_to") for spec in fields if isinstance(spec, dict)} & {"email", "phone"}:
        problems.append("Map one field to the lead's email or phone, so the lead can be contacted.")
    if problems:
        raise ValidationError({"fields": problems})
    return fields


def capture_form_save(*, form: CaptureForm, by) -> CaptureForm:
    """Create or change a form: marketers and managers; its fields and rules checked (errors name the field)."""
    check_may_run_forms(by)
    capture_form_check(form)
    form.save()
    return form


def capture_form_check(form: CaptureForm) -> None:
    """Every rule of a form's definition; raises ValidationError with the errors by field."""
    errors = {}
    try:
        form_fields_check(form.fields)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if form.consent_required and not form.consent_text.strip():
        errors["consent_text"] = ["Write the consent wording the box shows, or do not require consent."]
    if form.consent_text.strip() and not form.consent_version.strip():
        errors["consent_version"] = ["Give the wording a version (e.g. 2026-11), and change it when the wording changes."]
    if form.owner_rule == CaptureForm.OwnerRule.FIXED and form.owner_id is None:
        errors["owner"] = ["Choose the rep who gets this form's leads."]
    if form.owner_id is not None and not access_for(form.owner).owns_leads:
        errors["owner"] = [f"{form.owner.get_username()} cannot own leads: choose an active sales rep or manager."]
    for site in form.sites():
        if "/" in site or ":" in site or " " in site:
            errors["allowed_sites"] = [f"{site!r}: give host names only, e.g. www.example.com or .example.com."]
    if errors:
        raise ValidationError(errors)


def fill_token(form: CaptureForm) -> str:
    """A signed, timestamped token for the form: shown with it, checked when it comes back."""
    return signing.TimestampSigner(salt=f"capture:{form.slug}").sign(form.slug)


def _token_age(form: CaptureForm, token: str) -> float:
    """Seconds since the token was made; refuses (an error for the person) a forged or too old one."""
    signer = signing.TimestampSigner(salt=f"capture:{form.slug}")
    try:
        signer.unsign(token, max_age=settings.CRM_CAPTURE_TOKEN_MAX_AGE_SECONDS)
    except signing.SignatureExpired:
        raise CaptureRefused({"crm_token": "This form was opened too long ago: reload the page and send it again."}) from None
    except signing.BadSignature:
        raise CaptureRefused({"crm_token": "This form could not be checked: reload the page and send it again."}) from None
    _, stamp, _ = token.rsplit(":", 2)
    return timezone.now().timestamp() - signing.b62_decode(stamp)


# --- Checks ---------------------------------------------------------------------------------------


def _limit(rate: RateLimit, key: str):
    decision = hit(rate, key)
    if not decision.allowed:
        raise CaptureRefused(
            {"": "Too many submissions: wait a little and try again."}, status=429,
            retry_after=decision.retry_after_seconds,
        )


def _ticked(value) -> bool:
    """A checkbox as an HTML form ("on") or JSON (true) sends it."""
    return value in (True, "on", "1", "true", "yes", 1)


def _clean(form: CaptureForm, data: dict, *, strict: bool) -> tuple[dict, dict, bool]:
    """The lead's fields and the custom answers, checked; and whether consent was given."""
    specs = {spec["name"]: spec for spec in form.fields}
    allowed = set(specs) | {"consent"}
    errors: dict[str, str] = {}
    if strict:
        for name in sorted(set(data) - allowed):
            errors[name] = "This form has no such field."
    lead_fields, answers = {}, {}
    for name, spec in specs.items():
        raw = data.get(name, "")
        if spec.get("type") == "checkbox":
            value = _ticked(raw)
        else:
            if not isinstance(raw, str):
                errors[name] = "Give text."
                continue
            value = raw.strip()
            limit = LEAD_FIELDS.get(spec.get("maps_to", ""), MAX_ANSWER)
            if len(value) > limit:
                errors[name] = f"At most {limit} characters."
                continue
        label = spec.get("label") or name
        if spec.get("required") and not value:
            errors[name] = f"{label} is required."
            continue
        if value and spec.get("type") == "email":
            try:
                EmailValidator()(value)
            except ValidationError:
                errors[name] = "Enter a valid email address."
                continue
        if value and spec.get("type") == "select" and value not in spec.get("choices", []):
            errors[name] = "Choose one of the options."
            continue
        if spec.get("maps_to"):
            lead_fields[spec["maps_to"]] = value
        else:
            answers[name] = value
    consent = _ticked(data.get("consent"))
    if form.consent_text and form.consent_required and not consent:
        errors["consent"] = "Tick the box to agree, or we cannot keep your details."
    if not errors and not (lead_fields.get("email") or lead_fields.get("phone")):
        errors[""] = "Give an email address or a phone number."
    if errors:
        raise CaptureRefused(errors)
    if "email" in lead_fields:
        lead_fields["email"] = normalize_email(lead_fields["email"])
    return lead_fields, answers, consent


def _touch_from_urls(landing: str, referrer: str, at: datetime) -> dict | None:
    """The visit's attribution from its landing page's address, when its page views are not known (yet)."""
    if not landing and not referrer:
        return None
    touch = attribution_from_url(landing)
    del touch["click_id"], touch["landing_path"]
    touch.update(landing_page=landing[:1000], referrer=referrer[:1000], touched_at=at)
    return touch


# --- The capture ------------------------------------------------------------------------------------


def capture_submit(form: CaptureForm, data: dict, context: CaptureContext, *, strict: bool = False,
                   checks: bool = True, at_once: bool = False) -> CaptureResult:
    """Take a submission of `form`. Raises CaptureRefused (nothing written) or returns what happened.

    `strict`: unknown fields are errors (the JSON endpoint); an HTML form's other inputs are ignored.
    `checks`: False only for a release from quarantine (the spam checks were what held it).
    `at_once`: written in the caller's transaction, never queued (a booking needs its lead now).
    """
    now = timezone.now()
    if not form.is_active:
        raise CaptureRefused({"": "This form is closed."}, status=404)
    if not context.hosted and not host_allowed(context.origin_host, form.sites()):
        raise CaptureRefused(
            {"": f"This form cannot be sent from {context.origin_host or 'an unknown site'}."}, status=403
        )
    if checks and context.address:
        _limit(RateLimit("capture-address", settings.CRM_CAPTURE_PER_ADDRESS_PER_HOUR, 3600), context.address)
    lead_fields, answers, consent = _clean(form, data, strict=strict)
    suspicion = ""
    if checks and context.fill_token is not None:
        if not context.fill_token:
            raise CaptureRefused({"crm_token": "This form could not be checked: reload the page and send it again."})
        age = _token_age(form, context.fill_token)
        if age < settings.CRM_CAPTURE_MIN_FILL_SECONDS:
            suspicion = f"sent {age:.1f} s after the form was shown (people take longer)"
    if checks and context.honeypot:
        suspicion = "the hidden field people never see was filled in"
    if checks and not suspicion and captcha() is not None:
        suspicion = captcha_verify(context.captcha, context.address)
    if checks and lead_fields.get("email"):
        _limit(RateLimit(f"capture-email.{form.pk}", settings.CRM_CAPTURE_PER_EMAIL_PER_HOUR, 3600), lead_fields["email"])
    if suspicion:
        return CaptureResult(quarantine=Quarantine.objects.create(
            form=form, reason=suspicion[:200], data={**lead_fields, **answers, "consent": consent},
            context=_context_record(context), received_at=now,
        ))
    item = {"id": uuid.uuid4().hex, "form": form.pk, "at": now.isoformat(), "fields": lead_fields, "answers": answers,
            "consent": consent, "context": _context_record(context)}
    queue = None if at_once else capture_queue()
    if queue is None:
        return capture_item(item)
    queue.push(item)
    return CaptureResult(queued=True)


def capture_item(item: dict) -> CaptureResult:
    """Capture one checked submission (from the queue, or at once with CRM_CAPTURE_QUEUE_URL=inline).

    Written once however often the item comes: a submission remembers its capture's id.
    """
    form = CaptureForm.objects.select_related("conversion_kind", "resource").get(pk=item["form"])
    existing = FormSubmission.objects.filter(capture_id=item["id"]).select_related("lead").first()
    if existing is not None:
        return CaptureResult(lead=existing.lead, submission=existing)
    ctx = item["context"]
    context = CaptureContext(
        page_url=ctx.get("page_url", ""), referrer=ctx.get("referrer", ""), landing_page=ctx.get("landing_page", ""),
        visitor_id=ctx.get("visitor_id", ""), origin_host=ctx.get("origin_host", ""), hosted=ctx.get("hosted", False),
    )
    lead_fields, answers, consent = dict(item["fields"]), item["answers"], item["consent"]
    at = datetime.fromisoformat(item["at"])
    for attempt in (1, 2):
        try:
            return _capture(form, lead_fields, answers, consent, context, at, capture_id=item["id"])
        except ValidationError as exc:
            duplicate = "email" in getattr(exc, "message_dict", {}) and lead_fields.get("email")
            if attempt == 1 and duplicate:
                continue  # the same person sent it twice at once: the other made the lead a moment ago; take that
            raise CaptureRefused(_form_errors(form, exc)) from exc
    raise AssertionError("unreachable")


def captures_ingest(*, limit: int = 500) -> int:
    """Capture the queued submissions, each in its own transaction; returns how many were taken from the queue.

    One the lead services refuse (it passed the checks in the request, so rarely) is quarantined with the
    reason, never lost.
    """
    queue = capture_queue()
    if queue is None:
        return 0
    with queue.drain(limit) as items:
        for item in items:
            try:
                capture_item(item)
            except CaptureForm.DoesNotExist:
                # The form was deleted since: its submissions went with it.
                log.warning("Capture %s of a deleted form (%s) dropped", item.get("id"), item.get("form"))
            except DatabaseError:
                raise  # the database is down or busy: the batch goes back to the queue, for the next drain
            except Exception as exc:  # refused by a service, or a fault of ours: held back with the reason, not lost
                if not isinstance(exc, CaptureRefused):
                    log.exception("Capture %s could not be written", item.get("id"))
                Quarantine.objects.create(
                    form_id=item["form"], reason=f"could not be captured: {exc}"[:200], context=item["context"],
                    data={**item["fields"], **item["answers"], "consent": item["consent"]},
                    received_at=datetime.fromisoformat(item["at"]),
                )
        return len(items)


def _form_errors(form: CaptureForm, exc: ValidationError) -> dict[str, str]:
    """A lead service's refusal, by the form's field names (the lead's fields are mapped from them)."""
    by_lead_field = {spec.get("maps_to"): spec["name"] for spec in form.fields if spec.get("maps_to")}
    messages = getattr(exc, "message_dict", {"": exc.messages})
    return {by_lead_field.get(field, "" if field == "__all__" else field): " ".join(text) for field, text in messages.items()}


def _context_record(context: CaptureContext) -> dict:
    """What a quarantined submission keeps of its context (never the address: only whether it had one)."""
    return {"page_url": context.page_url, "referrer": context.referrer, "landing_page": context.landing_page,
            "visitor_id": context.visitor_id, "origin_host": context.origin_host, "hosted": context.hosted}


@transaction.atomic
def _capture(form, lead_fields, answers, consent, context, now, capture_id=None) -> CaptureResult:
    made_by = Actor(ActorKind.FORM, ref={"form": form.pk})
    company_name = lead_fields.pop("company", "")
    email = lead_fields.get("email", "")
    lead = lead_duplicate_of(email=email) if email else None
    if lead is not None:
        lead = Lead.objects.select_for_update().get(pk=lead.pk)
    created = lead is None
    if created:
        company = lead_services.company_for_name(company_name)
        lead = lead_services.lead_create(
            made_by=made_by, actor=f"form {form.slug}", reason=f"Submitted {form.name}", company=company,
            **{k: v for k, v in lead_fields.items() if v},
        )
    else:
        # The person's earlier details stay: only blanks are filled from the form.
        blanks = {k: v for k, v in lead_fields.items() if v and not getattr(lead, k)}
        if blanks:
            lead_services.lead_update(lead=lead, **blanks)
    first, last = visitor_touches(context.visitor_id)
    from_urls = _touch_from_urls(context.landing_page or context.page_url, context.referrer, now)
    touch = last or from_urls or {}
    if context.visitor_id:
        visitor_link(visitor_id=context.visitor_id, lead_id=lead.pk, at=now)
        lead_services.conversions_attach(visitor_id=context.visitor_id, lead=lead)
    if first and created:
        lead_services.lead_touch_record(lead=lead, touch=first, at=now)
    if touch:
        lead_services.lead_touch_record(lead=lead, touch=touch, at=now)
    consent_given = bool(form.consent_text) and consent
    if consent_given:
        lead_services.lead_consent_record(
            lead=lead, text=form.consent_text, source_label=f"form {form.slug} (version {form.consent_version or '1'})",
            at=now,
        )
    submission = lead_services.form_submission_record(
        lead=lead, form_name=form.name, form_slug=form.slug, resource=form.resource, page_url=context.page_url,
        data={**{k: v for k, v in lead_fields.items()}, **({"company": company_name} if company_name else {}), **answers},
        at=now, visitor_id=context.visitor_id, touch=touch,
        consent={"text": form.consent_text, "version": form.consent_version, "given": consent_given},
        source=made_by, capture_id=capture_id,
        payload={"capture_form": form.pk, "created": created, "kind": form.conversion_kind.slug},
    )
    lead_services.conversion_record(
        kind=form.conversion_kind.slug, lead=lead, visitor_id=context.visitor_id, submission=submission,
        resource=form.resource, at=now, source=made_by,
    )
    return CaptureResult(lead=lead, created=created, submission=submission)


# --- Quarantine -----------------------------------------------------------------------------------


def quarantine_release(*, quarantine: Quarantine, by) -> CaptureResult:
    """A marketer says it was a person: it is captured as it came (the fields are checked again, not the spam signs)."""
    check_may_run_forms(by)
    with transaction.atomic():
        locked = Quarantine.objects.select_for_update().get(pk=quarantine.pk)
        if locked.released_at or locked.discarded_at:
            raise ValidationError("This submission was already released or discarded.")
        data, form = dict(locked.data), locked.form
        form_data = {spec["name"]: data.get(spec.get("maps_to") or spec["name"], "") for spec in form.fields}
        form_data["consent"] = data.get("consent", False)
        lead_fields, answers, consent = _clean(form, form_data, strict=False)
        result = capture_item({
            "id": uuid.uuid4().hex, "form": form.pk, "at": timezone.now().isoformat(), "fields": lead_fields,
            "answers": answers, "consent": consent, "context": {**locked.context, "hosted": True},
        })
        locked.released_at, locked.released_by, locked.released_lead_id = timezone.now(), by, result.lead.pk
        locked.save(update_fields=["released_at", "released_by", "released_lead_id"])
    return result


def quarantine_discard(*, quarantine: Quarantine, by) -> None:
    check_may_run_forms(by)
    Quarantine.objects.filter(pk=quarantine.pk, released_at__isnull=True, discarded_at__isnull=True).update(
        discarded_at=timezone.now()
    )
