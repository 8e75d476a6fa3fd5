"""Company imports: which columns fill in what, and each row's fate (created, updated, skipped, refused).

A row is the same company as one in the CRM or an earlier row when it has the
same web domain (any case, with or without "https://www."), or, when it has
no domain or its domain is unknown, the same name (any case). A match fills
in the company's blanks, overwrites them, or is skipped, as the job says.
"""

from django.core.exceptions import ValidationError
from django.db.models.functions import Lower

from core.events import Actor
from leads.importing import COMPANY_FIELDS, companies_import_batch, company_import_clean
from leads.models import Company

from .models import LeadImport
from .rows import Fate, RowReader

NOUN = "company"  # in messages: "not a company field"
FIELDS = COMPANY_FIELDS
DATE_FIELDS = frozenset()
HEADER_NAMES = {
    "name": {"company", "companyname", "account", "accountname", "organisation", "organization", "societe", "firma"},
    "domain": {"domain", "website", "web", "url", "site", "webdomain", "homepage"},
    "industry": {"industry", "sector", "branche"},
    "size": {"size", "employees", "headcount", "companysize", "employeecount"},
    "country": {"country", "countrycode", "officelocation", "land", "pays"},
}


def check_setup(job: LeadImport, used: dict[str, str], errors: dict[str, list[str]]) -> None:
    if "name" not in used:
        errors.setdefault("mapping", []).append("Map a column to the company's name: every company needs one.")


class Planner(RowReader):
    """Gives each row its fate, a chunk at a time: two queries a chunk (the companies by domain, by name)."""

    def __init__(self, job: LeadImport, columns: list[str]):
        super().__init__(job, columns)
        self.seen_domain: dict[str, int] = {}
        self.seen_name: dict[str, int] = {}

    def dedupe(self, fates: list[Fate]) -> None:
        self._dedupe_in_file(fates)
        self._dedupe_in_crm(fates)

    def write(self, fates: list[Fate], *, made_by: Actor, by, reason: str) -> None:
        companies_import_batch(rows=[f.fields for f in fates if f.fate == "create"],
                               changes=[(f.lead, f.changes) for f in fates if f.fate == "update"], by=by, made_by=made_by)

    def _read(self, number: int, cells: list) -> Fate:
        fields, problems = self.read_fields(cells)
        if problems:
            return self.problems_fate(number, cells, problems)
        try:
            company = company_import_clean(fields)
        except ValidationError as exc:
            return self.invalid_fate(number, cells, exc)
        fields = {name: getattr(company, name) for name in fields if getattr(company, name) != ""}
        return Fate(number, cells, "create", fields=fields)

    def _dedupe_in_file(self, fates: list[Fate]) -> None:
        for fate in fates:
            if fate.fate != "create":
                continue
            domain, name = fate.fields.get("domain", ""), fate.fields["name"].lower()
            if domain and domain in self.seen_domain:
                fate.fate, fate.column = "skip", self.field_column["domain"]
                fate.reason = f"same domain as row {self.seen_domain[domain]}"
            elif not domain and name in self.seen_name:
                fate.fate, fate.column = "skip", self.field_column["name"]
                fate.reason = f"same name as row {self.seen_name[name]}"
            else:
                if domain:
                    self.seen_domain[domain] = fate.row
                self.seen_name.setdefault(name, fate.row)

    def _dedupe_in_crm(self, fates: list[Fate]) -> None:
        live = [fate for fate in fates if fate.fate == "create"]
        domains = sorted({fate.fields["domain"] for fate in live if fate.fields.get("domain")})
        names = sorted({fate.fields["name"].lower() for fate in live})
        by_domain, by_name = {}, {}
        if domains:
            # The oldest company of a domain wins, as of a name.
            for company in Company.objects.alias(key=Lower("domain")).filter(key__in=domains).order_by("-pk"):
                by_domain[company.domain.lower()] = company
        if names:
            for company in Company.objects.alias(key=Lower("name")).filter(key__in=names).order_by("-pk"):
                by_name[company.name.lower()] = company
        for fate in live:
            domain = fate.fields.get("domain", "")
            match = by_domain.get(domain) if domain else None
            if match is None:
                match = by_name.get(fate.fields["name"].lower())
                if match is not None and domain and match.domain and match.domain.lower() != domain:
                    match = None  # the same name on another domain: another company
            if match is not None:
                self._duplicate(fate, match)

    def _duplicate(self, fate: Fate, company: Company) -> None:
        fate.lead, fate.column = company, self.field_column["domain" if fate.fields.get("domain") else "name"]
        if self.job.on_duplicate == LeadImport.OnDuplicate.SKIP:
            fate.fate, fate.reason = "skip", f"company #{company.pk} ({company.name}) is already in the CRM"
            return
        overwrite = self.job.on_duplicate == LeadImport.OnDuplicate.OVERWRITE
        changes = {name: value for name, value in fate.fields.items()
                   if value != getattr(company, name) and (overwrite or getattr(company, name) == "")
                   and not (name == "name" and value.lower() == company.name.lower())}
        if changes:
            fate.fate, fate.changes = "update", changes
            fate.reason = f"company #{company.pk}: {', '.join(sorted(changes))}"
        else:
            fate.fate, fate.reason = "skip", f"company #{company.pk} already has these details"
