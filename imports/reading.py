"""Reading an uploaded file row by row, with memory flat in the file's size.

CSV is read by the csv module over a decoded text stream; XLSX by openpyxl in
read-only mode (it streams the sheet's XML). Nothing here knows about leads:
a reader yields (row number, cells) with row 1 the header, as a spreadsheet
numbers them, so an error can name the row a person sees.

A cell's value is a string, or for XLSX a date, a number or a bool as the
sheet typed it. Cells are never cut or cleaned here: the services decide what
a cell too long, a formula or an undecodable character means for its row.
"""

import codecs
import csv
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

SEPARATORS = {",": "comma", ";": "semicolon", "\t": "tab"}
ENCODINGS = ("utf-8", "utf-8-sig", "utf-16", "cp1252", "latin-1")
# A cell up to this size is read (then refused by the cap on a cell): only a broken file has a longer one.
_CSV_FIELD_LIMIT = 64 * 1024 * 1024
csv.field_size_limit(_CSV_FIELD_LIMIT)
# How much of the file is read to guess its encoding and separator.
_SAMPLE_BYTES = 64 * 1024

# The date formats offered; the caller confirms one (01/02/2026 is January or February).
DATE_FORMATS = {
    "%Y-%m-%d": "2026-01-31 (ISO)",
    "%d/%m/%Y": "31/01/2026 (day first)",
    "%m/%d/%Y": "01/31/2026 (month first)",
    "%d.%m.%Y": "31.01.2026",
}


class FileUnreadable(ValueError):
    """The file as a whole cannot be read (not CSV or XLSX, a broken archive, a quote never closed)."""


def file_kind(name: str) -> str:
    suffix = Path(name).suffix.lower()
    if suffix == ".xlsx":
        return "xlsx"
    if suffix in (".csv", ".txt", ".tsv"):
        return "csv"
    raise FileUnreadable(f"{Path(name).name}: import a .csv or .xlsx file (save other spreadsheets as one of these).")


def detect_encoding(sample: bytes) -> str:
    """The encoding of a CSV file from its first bytes: a byte order mark says UTF-8 or UTF-16; without one,
    UTF-8 if the sample decodes as UTF-8, else Windows-1252 (Latin-1 with the printable 0x80-0x9F)."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        # Incremental, not final: the sample may end inside a multi-byte character.
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        sample.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:  # 0x81, 0x8D, 0x8F, 0x90, 0x9D are undefined in cp1252
        return "latin-1"


def sniff_separator(text: str) -> str:
    """The separator among `,` `;` tab that splits the first lines into the same number of columns."""
    lines = [line for line in text.splitlines()[:20] if line.strip()]
    if not lines:
        return ","
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters="".join(SEPARATORS)).delimiter
    except csv.Error:
        # One column, or quoting the sniffer cannot follow: the one most used on the header line.
        return max(SEPARATORS, key=lambda sep: lines[0].count(sep))


@dataclass(frozen=True)
class Detected:
    encoding: str
    separator: str


def detect_csv(path: Path, *, encoding: str = "", separator: str = "") -> Detected:
    with open(path, "rb") as raw:
        sample = raw.read(_SAMPLE_BYTES)
    encoding = encoding or detect_encoding(sample)
    if not separator:
        text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(sample, final=False)
        separator = sniff_separator(text)
    return Detected(encoding, separator)


def read_rows(path: Path, *, kind: str, encoding: str = "utf-8", separator: str = ",") -> Iterator[tuple[int, list]]:
    """Every row of the file as (row number, cells), the header first as row 1; empty rows are passed over."""
    if kind == "xlsx":
        yield from _xlsx_rows(path)
    else:
        yield from _csv_rows(path, encoding=encoding, separator=separator)


def _csv_rows(path: Path, *, encoding: str, separator: str) -> Iterator[tuple[int, list]]:
    # errors="replace": a byte the encoding cannot read becomes U+FFFD, and that row (not the file) is refused.
    with open(path, encoding=encoding, errors="replace", newline="") as text:
        reader = csv.reader(text, delimiter=separator, strict=False)
        number = 0
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise FileUnreadable(f"Row {number + 1} cannot be read: {exc}. Check the file's quotes.") from exc
            number += 1
            if any(cell.strip() for cell in cells):
                yield number, cells


def _xlsx_rows(path: Path) -> Iterator[tuple[int, list]]:
    import zipfile

    from openpyxl import load_workbook

    try:
        # read_only streams the sheet; data_only=False keeps a formula as its text, so it is refused, not evaluated.
        book = load_workbook(path, read_only=True, data_only=False)
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise FileUnreadable("This is not an XLSX workbook that can be read: save it again as .xlsx or as CSV.") from exc
    try:
        sheet = book.worksheets[0]
        for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            cells = [_xlsx_value(value) for value in values]
            if any(cell != "" for cell in cells):
                yield number, cells
    finally:
        book.close()


def _xlsx_value(value):
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date() if value.time() == datetime.min.time() else value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a phone number typed as a number: 33612345678.0
    if isinstance(value, date | bool):
        return value
    return str(value)


def head(path: Path, *, kind: str, encoding: str, separator: str, rows: int) -> tuple[list[str], list[list]]:
    """The header and the first `rows` data rows."""
    reader = read_rows(path, kind=kind, encoding=encoding, separator=separator)
    try:
        header = next(reader, (0, []))[1]
        first = []
        for _, cells in reader:
            first.append(cells)
            if len(first) >= rows:
                break
        return [str(cell).strip() for cell in header], first
    finally:
        reader.close()


def parse_date(value, fmt: str) -> date:
    """A date cell in the format `fmt` (one of DATE_FORMATS); a date the sheet typed is taken as it is."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return datetime.strptime(str(value).strip(), fmt).date()


def date_formats_fitting(values) -> list[str]:
    """The formats of DATE_FORMATS that read every one of `values` (text cells; typed dates fit any)."""
    texts = [str(v).strip() for v in values if not isinstance(v, date) and str(v).strip()]
    fitting = []
    for fmt in DATE_FORMATS:
        try:
            for text in texts:
                datetime.strptime(text, fmt)
        except ValueError:
            continue
        fitting.append(fmt)
    return fitting

