"""Deal history imports: which columns fill in what, the file's stages, and each opportunity's fate.

A row is created (its lead, stage history and deal: leads.history), skipped
(its opportunity id was imported before, or is on an earlier row), or refused
with the reason. The file's own stage names are mapped by the importer to an
open stage of the pipeline, won or lost (`LeadImport.stage_mapping`).
"""

from collections import Counter
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from core.events import Actor
from core.policy import access_for, lead_owner_candidates
from leads.history import OUTCOMES, HistoryRow, history_import_batch, history_row_clean, refs_taken
from leads.importing import emails_taken

from . import reading
from .models import LeadImport
from .rows import Fate, RowReader

NOUN = "deal"  # in messages: "not a deal field"
FIELDS = {
    "opportunity_id": "Opportunity id",
    "stage": "Deal stage",
    "engaged_on": "Engaged on (created)",
    "closed_on": "Closed on",
    "value": "Value",
    "currency": "Currency",
    "product": "Product",
    "account": "Account (company)",
    "owner": "Owner (username, full name or email)",
    "email": "Contact email",
    "name": "Contact name",
    "first_name": "Contact first name",
    "last_name": "Contact last name",
    "phone": "Contact phone",
}
DATE_FIELDS = frozenset({"engaged_on", "closed_on"})
REQUIRED = ("opportunity_id", "stage", "engaged_on")
HEADER_NAMES = {
    "opportunity_id": {"opportunityid", "opportunity", "dealid", "id", "oppid"},
    "stage": {"dealstage", "stage", "status", "pipelinestage"},
    "engaged_on": {"engagedate", "engagedon", "createdon", "createdate", "createddate", "opendate", "openedon"},
    "closed_on": {"closedate", "closedon", "closingdate", "closeddate"},
    "value": {"closevalue", "value", "amount", "dealvalue", "revenue"},
    "product": {"product", "productname"},
    "account": {"account", "accountname", "company", "companyname", "organisation", "organization"},
    "owner": {"salesagent", "owner", "agent", "salesrep", "rep", "dealowner"},
    "email": {"email", "contactemail", "emailaddress"},
    "name": {"contact", "contactname", "fullname"},
    "phone": {"phone", "contactphone", "telephone"},
}
# The fields of leads.history's errors, by the column names of this import.
_ERROR_FIELDS = {"external_ref": "opportunity_id", "engaged_at": "engaged_on", "closed_at": "closed_on"}


def check_setup(job: LeadImport, used: dict[str, str], errors: dict[str, list[str]]) -> None:
    """The deal history's own rules of a set-up (`used`: field -> column), added to `errors`."""
    for name in REQUIRED:
        if name not in used:
            errors.setdefault("mapping", []).append(f"Map a column to {FIELDS[name].lower()}: every deal needs one.")
    bad = sorted(stage for stage, outcome in (job.stage_mapping or {}).items() if outcome and outcome not in OUTCOMES)
    if bad:
        errors["stage_mapping"] = [f"Map the stage {stage!r} to one of: {', '.join(OUTCOMES)}." for stage in bad]
    if job.unknown_owner not in LeadImport.UnknownOwner.values:
        errors["unknown_owner"] = [f"Choose one of {', '.join(LeadImport.UnknownOwner.values)}."]
    elif job.unknown_owner == LeadImport.UnknownOwner.IMPORTER and not access_for(job.created_by).owns_leads:
        errors["unknown_owner"] = ["You cannot own deals (only managers and sales reps do): refuse such rows instead."]
    if job.currency and not (len(job.currency) == 3 and job.currency.isalpha()):
        errors["currency"] = ["Use a three-letter ISO 4217 currency code, such as EUR or USD."]


def stage_counts(job: LeadImport, columns: list[str], mapping: dict) -> list[tuple[str, int]]:
    """The file's stage names with how many rows have each, most frequent first (the whole file is read)."""
    column = next((c for c, target in mapping.items() if target == "stage" and c in columns), None)
    if column is None:
        return []
    index, counts = columns.index(column), Counter()
    rows = reading.read_rows(Path(job.file.path), kind=job.kind, encoding=job.encoding or "utf-8",
                             separator=job.separator or ",")
    try:
        next(rows, None)
        for _, cells in rows:
            counts[str(cells[index]).strip()[:100] if index < len(cells) else ""] += 1
    finally:
        rows.close()
    return counts.most_common()


def suggest_stages(stages) -> dict[str, str]:
    """The outcome each usual stage name stands for ("Won" -> won, "Closed lost" -> lost, "Prospecting" -> sql...)."""
    guesses = {"won": "won", "closedwon": "won", "lost": "lost", "closedlost": "lost", "prospecting": "sql",
               "qualified": "sql", "engaging": "opportunity", "proposal": "opportunity", "negotiation": "opportunity",
               "new": "new", "contacted": "contacted", "mql": "mql", "sql": "sql", "opportunity": "opportunity"}
    return {stage: guesses.get("".join(ch for ch in stage.lower() if ch.isalnum()), "") for stage in stages}


class Planner(RowReader):
    """Gives each row its fate, a chunk at a time: two queries a chunk (opportunities and emails already in)."""

    def __init__(self, job: LeadImport, columns: list[str]):
        super().__init__(job, columns, date_fields=DATE_FIELDS)
        self.stages = dict(job.stage_mapping or {})
        self.stages_any_case = {stage.lower(): outcome for stage, outcome in self.stages.items()}
        self.seen_ref: dict[str, int] = {}
        self.seen_email: dict[str, int] = {}
        self.owners = self._owners()

    @staticmethod
    def _owners() -> dict[str, object]:
        """Who may own a deal, by username, email and full name (lower-cased); a name two people share is None."""
        owners: dict[str, object] = {}
        for user in lead_owner_candidates(get_user_model().objects.all()):
            for key in {user.get_username().lower(), (user.email or "").lower(), user.get_full_name().lower()} - {""}:
                owners[key] = None if key in owners and owners[key] != user else user
        return owners

    def write(self, fates: list[Fate], *, made_by: Actor, by, reason: str) -> None:
        rows = [fate.record for fate in fates if fate.fate == "create"]
        if rows:
            history_import_batch(rows=rows, made_by=made_by, by=by, reason=reason)

    def _owner(self, text: str):
        """The owner named by `text`, or a problem."""
        if not text:
            return None, None
        key = text.lower()
        if key in self.owners and self.owners[key] is None:
            return None, f"{text!r} names several users: use the username or the email"
        owner = self.owners.get(key)
        if owner is not None:
            return owner, None
        if self.job.unknown_owner == LeadImport.UnknownOwner.IMPORTER:
            return self.job.created_by, None
        return None, f"{text!r} is no user who can own deals (a manager or a sales rep): give a username, full name or email"

    def _read(self, number: int, cells: list) -> Fate:
        fields, problems = self.read_fields(cells)
        owner, problem = self._owner(fields.get("owner", ""))
        if problem:
            problems.append((self.field_column["owner"], problem))
        if problems:
            return self.problems_fate(number, cells, problems)
        stage = fields.get("stage", "")
        first, last = fields.get("first_name", ""), fields.get("last_name", "")
        if "name" in fields and not (first or last):
            first, _, last = fields["name"].partition(" ")
        record = HistoryRow(
            external_ref=fields.get("opportunity_id", ""), stage_label=stage,
            outcome=self.stages.get(stage) or self.stages_any_case.get(stage.lower(), ""),
            engaged_at=fields.get("engaged_on"), closed_at=fields.get("closed_on"), value=fields.get("value"),
            currency=fields.get("currency") or self.job.currency, product=fields.get("product", ""),
            company=fields.get("account", ""), owner=owner, email=fields.get("email", ""),
            first_name=first.strip(), last_name=last.strip(), phone=fields.get("phone", ""),
        )
        try:
            history_row_clean(record)
        except ValidationError as exc:
            errors = {_ERROR_FIELDS.get(name, name): messages for name, messages in exc.message_dict.items()}
            return self.invalid_fate(number, cells, ValidationError(errors))
        return Fate(number, cells, "create", record=record)

    def dedupe(self, fates: list[Fate]) -> None:
        live = [fate for fate in fates if fate.fate == "create"]
        in_crm = refs_taken(fate.record.external_ref for fate in live)
        emails = emails_taken(fate.record.email for fate in live)
        ref_column, email_column = self.field_column["opportunity_id"], self.field_column.get("email", "")
        for fate in live:
            ref, email = fate.record.external_ref, fate.record.email
            if ref in in_crm:
                fate.fate, fate.column = "skip", ref_column
                fate.reason = f"opportunity {ref} was already imported (lead #{in_crm[ref]})"
            elif ref in self.seen_ref:
                fate.fate, fate.column = "skip", ref_column
                fate.reason = f"same opportunity id as row {self.seen_ref[ref]}"
            elif email and (email in emails or email in self.seen_email):
                fate.fate, fate.column = "error", email_column
                where = f"lead #{emails[email]}" if email in emails else f"row {self.seen_email[email]}"
                fate.reason = (f"{email_column}: {email} is already the email of {where}; a deal history makes one "
                               "lead per opportunity: leave the email out of one of them")
            else:
                self.seen_ref[ref] = fate.row
                if email:
                    self.seen_email[email] = fate.row
