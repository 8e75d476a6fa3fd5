"""What every kind of import does with a row: read its mapped cells, refuse the bad ones, and give it a fate.

A planner (one per kind: leads in imports.services, deal history in
imports.deals, companies in imports.companies) reads a chunk of rows into
Fates and writes the chunk's fates in the run's transaction.
"""

import re
from dataclasses import dataclass, field
from datetime import datetime, time

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from . import reading

FORMULA_STARTS = ("=", "+", "-", "@")
# "+33 1 23 45 67 89", "-12.5": a number, not a formula, though it starts with + or -.
NUMBER_LIKE = re.compile(r"^[+-]?[\d\s().\-/]*\d[\d\s().\-/]*$")


@dataclass
class Fate:
    row: int
    cells: list
    fate: str  # "create", "update", "skip", "error"
    reason: str = ""
    column: str = ""
    fields: dict = field(default_factory=dict)
    lead: object = None  # the lead (or the company) in the CRM a row updates or repeats
    changes: dict = field(default_factory=dict)
    record: object = None  # what the row becomes, ready to write (a deal history's HistoryRow)


class RowReader:
    """Reads the mapped cells of a row: a cell too long, unreadable in the encoding, a formula, or a date not
    in the chosen format is a problem of its column; dates become midnight in the team's time zone."""

    def __init__(self, job, columns: list[str], *, date_fields=frozenset()):
        self.job = job
        self.columns = [(columns.index(column), column, target) for column, target in job.mapping.items() if target]
        self.field_column = {target: column for _, column, target in self.columns}
        self.cap = settings.CRM_IMPORT_MAX_CELL_CHARS
        self.tz = timezone.get_current_timezone()
        self.date_fields = date_fields

    def plan(self, chunk: list[tuple[int, list]]) -> list[Fate]:
        """Each row's fate: read (`_read`), then checked against the rows before it and the CRM (`dedupe`)."""
        fates = [self._read(number, cells) for number, cells in chunk]
        self.dedupe(fates)
        return fates

    def _read(self, number: int, cells: list) -> Fate:
        raise NotImplementedError

    def dedupe(self, fates: list[Fate]) -> None:
        raise NotImplementedError

    def read_fields(self, cells: list) -> tuple[dict, list[tuple[str, str]]]:
        fields, problems = {}, []
        for index, column, target in self.columns:
            value = cells[index] if index < len(cells) else ""
            problem = None
            if isinstance(value, str):
                if len(value) > self.cap:
                    problem = f"the cell has {len(value):,} characters; at most {self.cap:,} are taken"
                elif "\ufffd" in value:
                    problem = f"characters that are not {self.job.encoding or 'this encoding'}: choose the file's encoding"
                else:
                    value = value.strip()
                    if value.startswith(FORMULA_STARTS) and not NUMBER_LIKE.match(value):
                        problem = "starts with =, +, - or @ as a spreadsheet formula does: formulas are not imported"
            if problem is None and target in self.date_fields and value != "":
                try:
                    value = timezone.make_aware(datetime.combine(reading.parse_date(value, self.job.date_format), time.min), self.tz)
                except ValueError:
                    label = reading.DATE_FORMATS.get(self.job.date_format, self.job.date_format)
                    problem = f"{value!r} is not a date written as {label}"
            elif problem is None and not isinstance(value, str):
                value = value.isoformat() if hasattr(value, "isoformat") else str(value)
            if problem:
                problems.append((column, problem))
            elif value != "":
                fields[target] = value
        return fields, problems

    @staticmethod
    def problems_fate(number: int, cells: list, problems: list[tuple[str, str]]) -> Fate:
        return Fate(number, cells, "error", "; ".join(f"{c}: {p}" for c, p in problems), problems[0][0])

    def invalid_fate(self, number: int, cells: list, exc: ValidationError) -> Fate:
        """The fate of a row a service refused: each message under the column of its field."""
        pairs = [(self.field_column.get(name, name), message) for name, messages in exc.message_dict.items()
                 for message in messages]
        return self.problems_fate(number, cells, pairs)
