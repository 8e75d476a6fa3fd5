"""Reading files: encodings, separators, XLSX, the size of a cell, dates."""

import codecs
import io

import pytest
from openpyxl import Workbook

from core.tabular import formula_safe
from imports import reading
from imports.services import lead_import_preview, lead_import_upload

from .conftest import csv_bytes, upload

pytestmark = pytest.mark.django_db

ROWS = [["E-mail", "First name", "Company"], ["zoe@example.com", "Zoé", "Café Müller"]]


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (codecs.BOM_UTF8 + csv_bytes(ROWS), "utf-8-sig"),
        (csv_bytes(ROWS, encoding="utf-16"), "utf-16"),  # Python writes the BOM of the machine's byte order
        (codecs.BOM_UTF16_BE + csv_bytes(ROWS, encoding="utf-16-be"), "utf-16"),
        (csv_bytes(ROWS, encoding="utf-8"), "utf-8"),
        (csv_bytes(ROWS, encoding="latin-1"), "cp1252"),
    ],
    ids=["utf-8 with BOM", "utf-16 LE", "utf-16 BE", "utf-8", "latin-1"],
)
def test_the_encoding_is_detected_and_accents_read_right(manager_user, data, encoding):
    job = upload(data, by=manager_user)

    preview = lead_import_preview(job=job)

    assert job.encoding == encoding
    assert preview.columns == ["E-mail", "First name", "Company"]
    assert preview.rows == [["zoe@example.com", "Zoé", "Café Müller"]]


def test_a_chosen_encoding_wins_over_the_detected_one(manager_user):
    # UTF-8 bytes read as Latin-1 by choice: the choice is kept, not second-guessed.
    job = upload(csv_bytes(ROWS), by=manager_user, encoding="latin-1")

    assert job.encoding == "latin-1"
    assert lead_import_preview(job=job).rows[0][1] == "ZoÃ©"


@pytest.mark.parametrize(("separator", "name"), [(",", "comma"), (";", "semicolon"), ("\t", "tab")])
def test_the_separator_is_sniffed(manager_user, separator, name):
    rows = [["Email", "First name", "Last name"], ["a@example.com", "Ann", "Lee, Jr"]]
    data = "\n".join(separator.join(f'"{c}"' if "," in c else c for c in row) for row in rows).encode()

    job = upload(data, by=manager_user)

    assert job.separator == separator, name
    assert lead_import_preview(job=job).rows == [["a@example.com", "Ann", "Lee, Jr"]]


def test_a_header_is_mapped_by_its_name(manager_user):
    job = upload(csv_bytes([["E-mail", "First Name", "Surname", "Organisation", "Notes"], ["a@b.co", "A", "B", "C", "D"]]),
                 by=manager_user)

    assert job.mapping == {"E-mail": "email", "First Name": "first_name", "Surname": "last_name",
                           "Organisation": "company", "Notes": ""}


def test_an_xlsx_sheet_is_read_with_its_typed_cells(manager_user, tmp_path):
    from datetime import datetime

    book = Workbook()
    sheet = book.active
    sheet.append(["Email", "Phone", "Created on", "Note"])
    sheet.append(["ann@example.com", 33612345678, datetime(2026, 1, 31), "=HYPERLINK(\"x\")"])
    path = tmp_path / "leads.xlsx"
    book.save(path)

    with open(path, "rb") as handle:
        job = lead_import_upload(file=handle, name="leads.xlsx", by=manager_user)
    preview = lead_import_preview(job=job)

    assert job.kind == "xlsx"
    assert preview.columns == ["Email", "Phone", "Created on", "Note"]
    assert preview.rows == [["ann@example.com", "33612345678", datetime(2026, 1, 31).date(), '=HYPERLINK("x")']]


def test_a_file_that_is_neither_csv_nor_xlsx_is_refused(manager_user):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as exc:
        lead_import_upload(file=io.BytesIO(b"x"), name="leads.pdf", by=manager_user)

    assert "import a .csv or .xlsx file" in exc.value.message_dict["file"][0]


def test_a_ten_megabyte_cell_is_read_whole_not_a_crash(tmp_path):
    path = tmp_path / "big.csv"
    path.write_bytes(b"Email,Note\na@example.com," + b"x" * 10_000_000 + b"\nb@example.com,short\n")

    rows = list(reading.read_rows(path, kind="csv", encoding="utf-8", separator=","))

    assert [number for number, _ in rows] == [1, 2, 3]
    assert len(rows[1][1][1]) == 10_000_000


@pytest.mark.parametrize(
    ("values", "fitting"),
    [
        (["2026-01-31", "2025-12-01"], ["%Y-%m-%d"]),
        (["31/01/2026", "01/02/2026"], ["%d/%m/%Y"]),
        (["01/31/2026"], ["%m/%d/%Y"]),
        (["01/02/2026", "03/04/2026"], ["%d/%m/%Y", "%m/%d/%Y"]),  # ambiguous: the importer chooses
        (["31.01.2026"], ["%d.%m.%Y"]),
    ],
)
def test_the_date_formats_that_fit_are_offered(values, fitting):
    assert reading.date_formats_fitting(values) == fitting


def test_a_rejected_cell_that_would_start_a_formula_is_quoted():
    assert [formula_safe(c) for c in ["=1+1", "+3", "-2", "@SUM(A1)", "ok", ""]] == [
        "'=1+1", "'+3", "'-2", "'@SUM(A1)", "ok", "",
    ]
