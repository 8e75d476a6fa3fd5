"""Lead imports: which columns fill in what, and each row's fate (created, updated, skipped, refused).

Duplicates are found by email (any case), or by phone when chosen, in the file and in the CRM; a row
matching a lead fills in its blanks, overwrites it, or is skipped, as the job says.
"""

from django.core.exceptions import ValidationError
from django.db.models.functions import Lower

from core.emails import normalize_email
from core.events import Actor
from leads.importing import DATE_FIELDS, IMPORTABLE_FIELDS, lead_import_clean, leads_import_batch, leads_import_update
from leads.models import Lead

from .models import LeadImport
from .rows import Fate, RowReader

NOUN = "lead"  # in messages: "not a lead field"
FIELDS = IMPORTABLE_FIELDS
# Header names (letters and digits only, lower-cased) taken for each field, besides its name and label.
HEADER_NAMES = {
    "email": {"email", "emailaddress", "mail", "courriel", "emailadresse"},
    "first_name": {"firstname", "first", "givenname", "forename", "prenom", "vorname"},
    "last_name": {"lastname", "last", "surname", "familyname", "nom", "nachname"},
    "phone": {"phone", "phonenumber", "telephone", "tel", "mobile", "mobilephone", "cell"},
    "title": {"title", "jobtitle", "position", "role", "function"},
    "company": {"company", "companyname", "organisation", "organization", "account", "employer", "societe", "firma"},
    "timezone": {"timezone", "tz"},
    "consent_given_at": {"consentdate", "consentgivenon", "consentgivenat", "optindate", "optedinon"},
    "created_at": {"createdon", "createdat", "created", "datecreated", "signupdate", "signedupon"},
}



def check_setup(job: LeadImport, used: dict[str, str], errors: dict[str, list[str]]) -> None:
    """The lead import's own rules of a mapping (`used`: field -> column), added to `errors`."""
    if not {"email", "phone"} & set(used):
        errors.setdefault("mapping", []).append("Map a column to email or to phone: a lead needs one of them.")
    if job.dedupe_key not in LeadImport.DedupeKey.values:
        errors["dedupe_key"] = [f"Find duplicates by {' or '.join(LeadImport.DedupeKey.values)}."]
    elif job.dedupe_key not in used:
        errors["dedupe_key"] = [f"Duplicates are found by {job.dedupe_key}: map a column to it, or choose another key."]


class Planner(RowReader):
    """Gives each row its fate, a chunk at a time, with one or two queries a chunk (the duplicates in the CRM)."""

    def __init__(self, job: LeadImport, columns: list[str]):
        super().__init__(job, columns, date_fields=DATE_FIELDS)
        self.seen_email: dict[str, int] = {}
        self.seen_phone: dict[str, int] = {}

    def dedupe(self, fates: list[Fate]) -> None:
        self._dedupe_in_file(fates)
        self._dedupe_in_crm(fates)

    def write(self, fates: list[Fate], *, made_by: Actor, by, reason: str) -> None:
        leads_import_update(changes=[(f.lead, f.changes) for f in fates if f.fate == "update"], made_by=made_by, by=by)
        creates = [f for f in fates if f.fate == "create"]
        leads_import_batch(rows=[f.fields for f in creates], made_by=made_by, by=by, reason=reason)

    def _read(self, number: int, cells: list) -> Fate:
        fields, problems = self.read_fields(cells)
        if problems:
            return self.problems_fate(number, cells, problems)
        try:
            lead_import_clean(fields)
        except ValidationError as exc:
            return self.invalid_fate(number, cells, exc)
        if "email" in fields:
            fields["email"] = normalize_email(fields["email"])
        return Fate(number, cells, "create", fields=fields)

    def _dedupe_in_file(self, fates: list[Fate]):
        for fate in fates:
            if fate.fate != "create":
                continue
            email, phone = fate.fields.get("email", ""), fate.fields.get("phone", "")
            if email and email in self.seen_email:
                fate.fate, fate.column = "skip", self.field_column["email"]
                fate.reason = f"same email as row {self.seen_email[email]}"
            elif self.job.dedupe_key == "phone" and phone and phone in self.seen_phone:
                fate.fate, fate.column = "skip", self.field_column["phone"]
                fate.reason = f"same phone as row {self.seen_phone[phone]}"
            else:
                if email:
                    self.seen_email[email] = fate.row
                if phone:
                    self.seen_phone[phone] = fate.row

    def _dedupe_in_crm(self, fates: list[Fate]):
        live = [fate for fate in fates if fate.fate == "create"]
        emails = {fate.fields["email"] for fate in live if fate.fields.get("email")}
        by_email = {}
        if emails:
            for lead in Lead.objects.live().exclude(email="").alias(email_key=Lower("email")).filter(
                email_key__in=sorted(emails)
            ).select_related("company"):
                by_email[normalize_email(lead.email)] = lead
        by_phone = {}
        if self.job.dedupe_key == "phone":
            phones = sorted({fate.fields["phone"] for fate in live if fate.fields.get("phone")})
            if phones:
                for lead in Lead.objects.live().filter(phone__in=phones).select_related("company").order_by("-pk"):
                    by_phone[lead.phone] = lead  # the oldest of a phone wins
        for fate in live:
            email = fate.fields.get("email", "")
            if self.job.dedupe_key == "phone":
                match = by_phone.get(fate.fields.get("phone", ""))
                owner = by_email.get(email)
                if owner is not None and (match is None or owner.pk != match.pk):
                    fate.fate, fate.column = "error", self.field_column["email"]
                    fate.reason = f"{self.field_column['email']}: another lead (#{owner.pk}) already has this email address"
                    continue
            else:
                match = by_email.get(email)
            if match is not None:
                self._duplicate(fate, match)

    def _duplicate(self, fate: Fate, lead: Lead):
        key = self.job.dedupe_key
        fate.lead, fate.column = lead, self.field_column[key]
        if self.job.on_duplicate == LeadImport.OnDuplicate.SKIP:
            fate.fate, fate.reason = "skip", f"lead #{lead.pk} already has this {key}"
            return
        overwrite = self.job.on_duplicate == LeadImport.OnDuplicate.OVERWRITE
        changes = {}
        for name, value in fate.fields.items():
            if name == "created_at":
                continue
            current = lead.company.name if name == "company" and lead.company_id else getattr(lead, name, "")
            if name == "company":
                current = current or ""
            blank = current in ("", None)
            if (blank or overwrite) and value != current and not (name == "company" and str(current).lower() == str(value).lower()):
                changes[name] = value
        if changes:
            fate.fate, fate.changes = "update", changes
            fate.reason = f"lead #{lead.pk}: {', '.join(sorted(changes))}"
        else:
            fate.fate, fate.reason = "skip", f"lead #{lead.pk} already has these details"

