"""Leads made and filled in many at a time, from an import: the rules of `lead_create` and `lead_update`, in bulk.

A lead made here is the same as one made by `lead_create`: its email stored
lower-cased and held by no other live lead, an email or a phone, the first
StageChange (— → New) and its `lead.created` event. What differs is the
cost: a batch of a thousand rows takes a fixed number of queries (the
duplicates, the companies, the leads, their stage changes, their events),
not a few per lead. The caller (imports.services) runs each batch in one
transaction, so a batch is written whole or not at all.
"""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models.functions import Lower
from django.utils import timezone

from core.emails import normalize_email
from core.events import Actor, EventType, events_record_each

from .models import Company, Lead, StageChange
from .pipeline import LeadStatus
from .services import _when, company_domain_normalize

# What a column of an import may fill in, with its label; "company" is the company's name.
IMPORTABLE_FIELDS = {
    "first_name": "First name",
    "last_name": "Last name",
    "email": "Email",
    "phone": "Phone",
    "title": "Job title",
    "company": "Company",
    "timezone": "Time zone",
    "utm_medium": "UTM medium",
    "utm_content": "UTM content",
    "utm_term": "UTM term",
    "consent_given_at": "Consent given on",
    "consent_text": "Consent wording",
    "consent_source": "Consent source",
    "created_at": "Created on",
}
# The fields whose cells are dates (in the format the importer confirms).
DATE_FIELDS = frozenset({"consent_given_at", "created_at"})
# The fields an update may fill in or overwrite (an existing lead's creation time is history).
UPDATABLE_FIELDS = frozenset(IMPORTABLE_FIELDS) - {"created_at"}


def lead_import_clean(fields: dict) -> Lead:
    """An unsaved lead from one imported row, checked as `lead_create` checks it, without a query.

    `fields` holds IMPORTABLE_FIELDS, "company" as a name (left out of the lead: see `companies_for_names`).
    Raises ValidationError keyed by field. Whether another lead has the email is asked per batch.
    """
    unknown = set(fields) - set(IMPORTABLE_FIELDS)
    if unknown:
        raise ValidationError({name: [f"{name!r} is not a field an import can fill in."] for name in sorted(unknown)})
    values = {name: value for name, value in fields.items() if name != "company"}
    lead = Lead(**values)
    lead.email = normalize_email(lead.email)
    lead.status = LeadStatus.NEW
    errors = {}
    try:
        lead.created_at = _when(fields.get("created_at"), field="created_at")
    except ValidationError as exc:
        errors.update(exc.message_dict)
    lead.stage_entered_at = lead.created_at
    try:
        lead.full_clean(validate_constraints=False, exclude=["company"])
    except ValidationError as exc:
        for name, messages in exc.message_dict.items():
            errors.setdefault(name, []).extend(messages)
    if not lead.email and not lead.phone.strip():
        errors.setdefault("email", []).append("Give an email address or a phone number, so the lead can be contacted.")
    if errors:
        raise ValidationError(errors)
    return lead


def emails_taken(emails, *, exclude_pks=()) -> dict[str, int]:
    """Of `emails` (lower-cased), those a live lead has, with its id: one query, on the unique index's expression."""
    emails = sorted({email for email in emails if email})
    if not emails:
        return {}
    rows = (
        Lead.objects.live().exclude(email="").alias(email_key=Lower("email")).filter(email_key__in=emails)
        .exclude(pk__in=list(exclude_pks)).values_list("email", "pk")
    )
    return {normalize_email(email): pk for email, pk in rows}


def email_errors(emails) -> dict[str, list[str]]:
    """Why a batch of new leads cannot have these emails (lower-cased): two of them alike, or one a live lead has.
    One query."""
    emails = [email for email in emails if email]
    if len(emails) != len(set(emails)):
        return {"email": ["Two rows of the batch have the same email address."]}
    taken = emails_taken(emails)
    if taken:
        return {"email": [f"Another lead already has the email address {email} (lead #{pk})." for email, pk in taken.items()]}
    return {}


def companies_for_names(names) -> dict[str, Company]:
    """The company for each name (by its lower-cased name), made when there is none: `company_for_name` for many.

    Two queries however many names: the companies that exist (the oldest of a name, as `company_for_name`
    picks), then those made.
    """
    wanted = {}
    for name in names:
        name = (name or "").strip()[:200]
        if name:
            wanted.setdefault(name.lower(), name)
    if not wanted:
        return {}
    found = {}
    for company in Company.objects.alias(key=Lower("name")).filter(key__in=list(wanted)).order_by("-pk"):
        found[company.name.lower()] = company  # the last written is the oldest
    made = []
    for key, name in wanted.items():
        if key not in found:
            company = Company(name=name)
            company.full_clean()
            made.append(company)
            found[key] = company
    if made:
        Company.objects.bulk_create(made)
    return found


def _actor(made_by: Actor | None, by) -> Actor:
    return made_by if made_by is not None else Actor.of(by, label="import")


def leads_import_batch(*, rows: list[dict], made_by: Actor | None = None, by=None, reason: str = "Imported") -> list[Lead]:
    """Create a lead from each of `rows` (IMPORTABLE_FIELDS, "company" a name), all or none.

    Guarantees, as `lead_create`: every row is valid (else ValidationError naming the rows, nothing written);
    no two rows and no live lead share an email; each lead is New from its `created_at` with its first
    StageChange and its `lead.created` event (actor `made_by`, an import job, else `by`). Returns the leads.
    """
    with transaction.atomic():
        leads, errors, names = [], {}, []
        for index, fields in enumerate(rows):
            try:
                leads.append(lead_import_clean(fields))
            except ValidationError as exc:
                errors[f"row {index}"] = exc.messages
            names.append(fields.get("company", ""))
        errors.update(email_errors(lead.email for lead in leads))
        if errors:
            raise ValidationError(errors)
        companies = companies_for_names(names)
        for lead, name in zip(leads, names, strict=True):
            lead.company = companies.get((name or "").strip()[:200].lower())
            lead.search_text = lead.build_search_text()
        Lead.objects.bulk_create(leads)
        StageChange.objects.bulk_create(
            StageChange(lead=lead, from_status="", to_status=LeadStatus.NEW, changed_at=lead.created_at, changed_by=by,
                        actor="" if by is not None else "import", reason=reason)
            for lead in leads
        )
        actor = _actor(made_by, by)
        events_record_each(EventType.LEAD_CREATED, actor=actor, rows=(
            {"lead_id": lead.pk, "at": lead.created_at,
             "payload": {"source": lead.source_id, "campaign": lead.campaign_id, "owner": lead.owner_id}}
            for lead in leads
        ))
        return leads


def leads_import_update(*, changes: list[tuple[Lead, dict]], made_by: Actor | None = None, by=None) -> int:
    """Give existing leads the values of imported rows (UPDATABLE_FIELDS, "company" a name), all or none.

    Guarantees, as `lead_update`: each lead is valid after the change and keeps an email no other live lead
    has (else ValidationError, nothing written); one `lead.updated` event per lead naming the fields (not
    their values). A lead with nothing to change is left as it is. Returns how many leads changed.
    """
    with transaction.atomic():
        changes = [(lead, fields) for lead, fields in changes if fields]
        if not changes:
            return 0
        unknown = {name for _, fields in changes for name in fields} - UPDATABLE_FIELDS
        if unknown:
            raise ValidationError({name: [f"An import cannot change {name!r}."] for name in sorted(unknown)})
        companies = companies_for_names(fields.get("company", "") for _, fields in changes)
        errors, written = {}, set()
        for lead, fields in changes:
            for name, value in fields.items():
                if name == "company":
                    lead.company = companies.get((value or "").strip()[:200].lower())
                else:
                    setattr(lead, name, value)
                written.add(name)
            lead.email = normalize_email(lead.email)
            try:
                lead.full_clean(validate_constraints=False, exclude=["company", "source", "campaign", "persona", "owner", "erased_by"])
            except ValidationError as exc:
                errors[f"lead #{lead.pk}"] = exc.messages
        taken = emails_taken((lead.email for lead, fields in changes if "email" in fields), exclude_pks=[lead.pk for lead, _ in changes])
        if taken:
            errors["email"] = [f"Another lead already has the email address {email} (lead #{pk})." for email, pk in taken.items()]
        if errors:
            raise ValidationError(errors)
        now = timezone.now()
        for lead, _ in changes:
            lead.search_text = lead.build_search_text()
            lead.updated_at = now
        Lead.objects.bulk_update([lead for lead, _ in changes], [*sorted(written), "search_text", "updated_at"], batch_size=500)
        events_record_each(EventType.LEAD_UPDATED, actor=_actor(made_by, by), rows=(
            {"lead_id": lead.pk, "payload": {"fields": sorted(fields)}} for lead, fields in changes
        ))
        return len(changes)


# --- Companies ---------------------------------------------------------------------------------

# What a column of a company import may fill in, with its label.
COMPANY_FIELDS = {
    "name": "Name",
    "domain": "Web domain",
    "industry": "Industry",
    "size": "Size (headcount band)",
    "country": "Country",
}


def company_import_clean(fields: dict) -> Company:
    """An unsaved company from one imported row (COMPANY_FIELDS), checked without a query; ValidationError
    keyed by field."""
    unknown = set(fields) - set(COMPANY_FIELDS)
    if unknown:
        raise ValidationError({name: [f"{name!r} is not a field a company import can fill in."] for name in sorted(unknown)})
    company = Company(**{name: (value or "").strip() for name, value in fields.items()})
    company.domain = company_domain_normalize(company.domain)
    errors = {}
    if not company.name:
        errors["name"] = ["Give the company's name."]
    if company.domain and ("." not in company.domain or " " in company.domain):
        errors["domain"] = [f"{company.domain!r} is not a web domain such as example.com."]
    try:
        company.full_clean(exclude=["name"] if "name" in errors else None)
    except ValidationError as exc:
        for name, messages in exc.message_dict.items():
            errors.setdefault(name, []).extend(messages)
    if errors:
        raise ValidationError(errors)
    return company


def companies_import_batch(*, rows: list[dict], changes: list[tuple[Company, dict]], by=None,
                           made_by: Actor | None = None) -> tuple[int, int]:
    """Create a company from each of `rows` and give existing companies the values in `changes` (COMPANY_FIELDS),
    all or none. Every company is valid (else ValidationError naming it, nothing written); a renamed company's
    leads find it by its new name; each changed one gets a `company.updated` event naming the fields.
    Returns (created, updated)."""
    with transaction.atomic():
        made, errors = [], {}
        for index, fields in enumerate(rows):
            try:
                made.append(company_import_clean(fields))
            except ValidationError as exc:
                errors[f"row {index}"] = exc.messages
        changes = [(company, fields) for company, fields in changes if fields]
        written = set()
        for company, fields in changes:
            unknown = set(fields) - set(COMPANY_FIELDS)
            if unknown:
                raise ValidationError({name: [f"An import cannot change {name!r}."] for name in sorted(unknown)})
            for name, value in fields.items():
                setattr(company, name, company_domain_normalize(value) if name == "domain" else value)
                written.add(name)
            try:
                company.full_clean()
            except ValidationError as exc:
                errors[f"company #{company.pk}"] = exc.messages
        if errors:
            raise ValidationError(errors)
        Company.objects.bulk_create(made)
        if changes:
            Company.objects.bulk_update([company for company, _ in changes], sorted(written), batch_size=500)
            events_record_each(EventType.COMPANY_UPDATED, actor=_actor(made_by, by), rows=(
                {"lead_id": None, "subject_type": "company", "subject_id": company.pk, "payload": {"fields": sorted(fields)}}
                for company, fields in changes
            ))
            renamed = [company.pk for company, fields in changes if "name" in fields]
            if renamed:
                leads = list(Lead.objects.filter(company_id__in=renamed).select_related("company"))
                for lead in leads:
                    lead.search_text = lead.build_search_text()
                Lead.objects.bulk_update(leads, ["search_text"], batch_size=500)
        return len(made), len(changes)
