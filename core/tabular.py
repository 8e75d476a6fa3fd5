"""Lists written out for spreadsheets: CSV (streamed) and XLSX (typed cells), formula-safe, in the team's time zone.

A list is described once, as columns (`Column`: a header label for people, a
function giving a row's value, the kind of value). The writers read the rows
once, in order, holding one row at a time: a list of a million rows costs the
memory of a few.

Formula safety: text a person typed that starts with = + - @ tab or CR would
start a formula in a spreadsheet (CSV injection). In a CSV it gets a leading
`'`; in an XLSX it stays exactly as typed, stored as text (never a formula)
with Excel's "quote prefix" flag, so a phone "+49 30 1234" reads as typed.
"""

import csv
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.http import FileResponse, StreamingHttpResponse
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.utils.text import slugify

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

# The largest sheet Excel opens, less the header row.
XLSX_MAX_ROWS = 1_048_575
# Excel shows at most this many characters in a cell.
XLSX_MAX_CELL_CHARS = 32_767
# Characters an XLSX file may not hold (XML 1.0 control characters); openpyxl refuses them.
_XLSX_ILLEGAL = re.compile(r"[\000-\010\013\014\016-\037]")

TEXT, INTEGER, NUMBER, DATE, DATETIME = "text", "integer", "number", "date", "datetime"
DATETIME_TEXT = "%Y-%m-%d %H:%M:%S"
DATETIME_XLSX = "yyyy-mm-dd hh:mm:ss"
DATE_XLSX = "yyyy-mm-dd"
# Rows per chunk of CSV text handed to the server: fewer, bigger writes.
CSV_ROWS_PER_CHUNK = 500


@dataclass(frozen=True)
class Column:
    """One column of a list: its header, how a row gives its value, and what kind of value that is."""

    label: str
    value: Callable[[Any], Any]
    kind: str = TEXT


def formula_safe(value) -> str:
    """A value as text for a CSV someone opens in a spreadsheet: text that would start a formula gets a `'`."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def local(value: datetime) -> datetime:
    """An aware time as the wall-clock time where the team works (settings.TIME_ZONE), without its zone."""
    return timezone.localtime(value, timezone.get_default_timezone()).replace(tzinfo=None)


def header(column: Column) -> str:
    # Times are written as local wall-clock text: the header says which clock.
    if column.kind == DATETIME:
        return f"{column.label} ({timezone.get_default_timezone_name()})"
    return column.label


def _csv_cell(column: Column, value) -> str:
    if value is None or value == "":
        return ""
    if column.kind == DATETIME:
        return local(value).strftime(DATETIME_TEXT)
    if column.kind == DATE:
        return value.isoformat()
    if column.kind in (INTEGER, NUMBER):
        return str(value)  # a number, never text: a negative one is not a formula
    return formula_safe(value)


class _Echo:
    def write(self, value):
        return value


def csv_lines(columns: Iterable[Column], rows: Iterable) -> Iterator[str]:
    """The CSV text of `rows`, in chunks: a UTF-8 byte order mark (Excel then reads UTF-8), the header, the rows."""
    columns = tuple(columns)
    writer = csv.writer(_Echo())
    yield "\ufeff" + writer.writerow([header(c) for c in columns])
    chunk = []
    for row in rows:
        chunk.append(writer.writerow([_csv_cell(c, c.value(row)) for c in columns]))
        if len(chunk) >= CSV_ROWS_PER_CHUNK:
            yield "".join(chunk)
            chunk = []
    if chunk:
        yield "".join(chunk)


def _xlsx_cell(sheet, column: Column, value):
    from openpyxl.cell import WriteOnlyCell  # imported on the first workbook: most processes never write one

    if value is None or value == "":
        return None
    if column.kind == DATETIME:
        cell = WriteOnlyCell(sheet, value=local(value))
        cell.number_format = DATETIME_XLSX
        return cell
    if column.kind == DATE:
        cell = WriteOnlyCell(sheet, value=value)
        cell.number_format = DATE_XLSX
        return cell
    if column.kind in (INTEGER, NUMBER):
        return WriteOnlyCell(sheet, value=value if isinstance(value, int | Decimal) else Decimal(str(value)))
    text = _XLSX_ILLEGAL.sub("", str(value))[:XLSX_MAX_CELL_CHARS]
    cell = WriteOnlyCell(sheet, value=text)
    # openpyxl makes text starting with "=" a formula: it stays text, as typed.
    cell.data_type = "s"
    if text.startswith(FORMULA_STARTS):
        cell.quotePrefix = True
    return cell


def xlsx_file(columns: Iterable[Column], rows: Iterable, *, title: str):
    """An XLSX workbook of `rows` in a temporary file (deleted when closed), at its start.

    Numbers are numbers, dates and times are dates (local wall-clock time, formatted
    as text of the same shape as the CSV's), everything else is text.
    """
    from openpyxl import Workbook  # ~14 MB: imported by the processes that write a workbook, not by every one

    columns = tuple(columns)
    book = Workbook(write_only=True)
    sheet = book.create_sheet(title=title[:31])
    sheet.freeze_panes = "A2"
    sheet.append([header(c) for c in columns])
    for row in rows:
        sheet.append([_xlsx_cell(sheet, c, c.value(row)) for c in columns])
    file = tempfile.TemporaryFile(suffix=".xlsx")
    book.save(file)
    file.seek(0)
    return file


def export_filename(name: str, *, filters: dict[str, str] | None = None, extension: str, max_summary: int = 60) -> str:
    """`leads-2026-03-02-status-mql-owner-5.csv`: the list, the team's date, the filters in short; ASCII only."""
    pairs = ((key.removesuffix("__exact").replace("__", "-"), value) for key, value in (filters or {}).items() if value)
    summary = slugify("-".join(f"{key}-{value}" for key, value in pairs)).replace("_", "-")[:max_summary]
    parts = [slugify(name) or "export", timezone.localdate(timezone=timezone.get_default_timezone()).isoformat()]
    return "-".join([*parts, summary.strip("-")] if summary.strip("-") else parts) + f".{extension}"



def attachment_response(*, filename: str, content_type: str, lines: Iterable[str] | None = None, file=None):
    """The download of an export: CSV `lines` streamed as they are written, or a finished `file` sent from disk.

    The file name goes into Content-Disposition quoted (and as UTF-8 when it must), never pasted in; the
    response is not kept by any cache: it holds personal data.
    """
    if file is not None:
        response = FileResponse(file, as_attachment=True, filename=filename, content_type=content_type)
    else:
        response = StreamingHttpResponse(lines, content_type=content_type)
        response["Content-Disposition"] = content_disposition_header(True, filename)
    response["Cache-Control"] = "no-store"
    return response
