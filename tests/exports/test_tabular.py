"""Writing lists for spreadsheets (core.tabular): labels, formula safety in CSV and XLSX, typed cells, local times."""

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine
from django.test import override_settings
from openpyxl import load_workbook

from core.tabular import DATE, DATETIME, INTEGER, NUMBER, Column, attachment_response, csv_lines, export_filename, xlsx_file

HOSTILE = ["=HYPERLINK(\"http://evil\",\"x\")", "+49 30 1234567", "-2+3", "@SUM(A1:A9)", "\tx", "\rx", "plain", ""]
# 01:30 UTC on the night Berlin moves its clocks forward (02:00 -> 03:00 local, at 01:00 UTC).
AFTER_THE_SWITCH = datetime(2027, 3, 28, 1, 30, tzinfo=UTC)

TEXT_ONLY = (Column("Name", lambda row: row),)


def read_csv(columns, rows) -> list[list[str]]:
    text = "".join(csv_lines(columns, rows))
    assert text.startswith("\ufeff")  # Excel reads the file as UTF-8 only with it
    return list(csv.reader(io.StringIO(text[1:])))


def read_xlsx(columns, rows):
    with xlsx_file(columns, rows, title="Leads") as file:
        return list(load_workbook(io.BytesIO(file.read())).active.iter_rows())


def test_csv_text_that_would_start_a_formula_gets_a_quote_and_the_rest_is_as_typed():
    rows = read_csv(TEXT_ONLY, HOSTILE)

    assert rows[0] == ["Name"]
    assert [row[0] for row in rows[1:]] == [
        "'=HYPERLINK(\"http://evil\",\"x\")", "'+49 30 1234567", "'-2+3", "'@SUM(A1:A9)", "'\tx", "'\rx", "plain", "",
    ]


def test_xlsx_text_that_would_start_a_formula_stays_as_typed_but_is_text_never_a_formula():
    cells = [row[0] for row in read_xlsx(TEXT_ONLY, HOSTILE)[1:]]

    # The phone reads as typed: +49 30 1234567. (XML reads a lone CR back as a line feed.)
    assert [cell.value for cell in cells[:7]] == [*HOSTILE[:5], "\nx", "plain"]
    assert {cell.data_type for cell in cells[:7]} == {"s"}
    assert [cell.quotePrefix for cell in cells[:7]] == [True] * 6 + [False]


def test_xlsx_drops_characters_a_sheet_cannot_hold_and_cuts_text_at_excels_limit():
    cells = [row[0] for row in read_xlsx(TEXT_ONLY, ["a\x00b\x1bc", "x" * 40_000])[1:]]

    assert cells[0].value == "abc"
    assert len(cells[1].value) == 32_767


NUMBERS_AND_TIMES = (
    Column("ID", lambda row: row["id"], INTEGER),
    Column("Value", lambda row: row["value"], NUMBER),
    Column("Expected close", lambda row: row["close"], DATE),
    Column("Created", lambda row: row["at"], DATETIME),
)
ROW = {"id": 7, "value": Decimal("-1250.50"), "close": date(2027, 4, 30), "at": AFTER_THE_SWITCH}


@override_settings(TIME_ZONE="Europe/Berlin")
def test_csv_numbers_are_plain_and_times_are_the_teams_wall_clock_named_in_the_header():
    rows = read_csv(NUMBERS_AND_TIMES, [ROW, {"id": 8, "value": None, "close": None, "at": None}])

    assert rows[0] == ["ID", "Value", "Expected close", "Created (Europe/Berlin)"]
    # A number is never a formula, even a negative one: no quote.
    assert rows[1] == ["7", "-1250.50", "2027-04-30", "2027-03-28 03:30:00"]
    assert rows[2] == ["8", "", "", ""]


@override_settings(TIME_ZONE="Europe/Berlin")
def test_xlsx_cells_are_typed_numbers_and_dates_in_the_teams_time():
    header, row = read_xlsx(NUMBERS_AND_TIMES, [ROW])

    assert [cell.value for cell in header] == ["ID", "Value", "Expected close", "Created (Europe/Berlin)"]
    assert [cell.data_type for cell in row] == ["n", "n", "d", "d"]
    assert row[0].value == 7 and row[1].value == pytest.approx(-1250.5)
    assert row[2].value == datetime(2027, 4, 30)
    assert row[3].value == datetime(2027, 3, 28, 3, 30)
    assert row[3].number_format == "yyyy-mm-dd hh:mm:ss"


def test_csv_is_written_as_the_rows_are_read_not_after_all_of_them():
    def rows():
        yield from range(600)
        raise AssertionError("read past what the first chunks needed")

    lines = csv_lines((Column("N", lambda row: row, INTEGER),), rows())
    assert next(lines).startswith("\ufeffN")
    assert next(lines).splitlines()[:2] == ["0", "1"]  # the first 500 rows, before row 600 is asked for


@override_settings(TIME_ZONE="Europe/Berlin")
def test_a_file_name_says_the_list_the_teams_date_and_the_filters_in_ascii():
    with time_machine.travel(datetime(2027, 3, 27, 23, 30, tzinfo=UTC), tick=False):  # already the 28th in Berlin
        name = export_filename("leads", filters={"status": "mql", "q": 'Zoë "; rm -rf /', "owner": ""}, extension="csv")

    assert name == "leads-2027-03-28-status-mql-q-zoe-rm-rf.csv"


def test_a_long_filter_summary_is_cut_and_no_filter_leaves_none():
    assert len(export_filename("deals", filters={"q": "x" * 500}, extension="xlsx")) < 100
    with time_machine.travel(datetime(2026, 3, 2, 10, 30, tzinfo=UTC), tick=False), override_settings(TIME_ZONE="UTC"):
        assert export_filename("events", filters={}, extension="xlsx") == "events-2026-03-02.xlsx"


def test_the_download_is_an_attachment_with_its_name_quoted_and_never_cached():
    response = attachment_response(filename='lead"s\r\n.csv', content_type="text/csv", lines=iter(["a"]))

    assert response["Content-Disposition"].startswith("attachment; filename")
    assert "\r" not in response["Content-Disposition"] and "\n" not in response["Content-Disposition"]
    assert response["Cache-Control"] == "no-store"
