"""The suite's clock switch, and the rule that lets it work: the app asks Python for the time, never the database."""

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import ROOT, clock_destination


def test_a_moved_clock_reads_as_utc_unless_it_names_a_zone():
    assert clock_destination("2028-02-29T12:00") == datetime(2028, 2, 29, 12, 0, tzinfo=ZoneInfo("UTC"))
    berlin = clock_destination("2027-03-28T01:30 Europe/Berlin")
    assert berlin.utcoffset() == timedelta(hours=1)  # still winter time: 02:00 jumps to 03:00
    an_hour_later = berlin.astimezone(ZoneInfo("UTC")) + timedelta(hours=1)
    assert an_hour_later.astimezone(ZoneInfo("Europe/Berlin")).hour == 3
    assert clock_destination("2027-06-30T22:30+09:00").utcoffset() == timedelta(hours=9)


def test_a_moved_clock_with_both_an_offset_and_a_zone_is_refused():
    with pytest.raises(ValueError, match="either an offset or a zone"):
        clock_destination("2027-06-30T22:30+09:00 Asia/Tokyo")


# Asking the database for the time would put the app on two clocks: the suite's moved
# clock (and time_machine in every test) moves Python's, never PostgreSQL's.
DATABASE_CLOCK = re.compile(
    r"(?-i:(?<![.\w])Now\(\))|\b(?:current_timestamp|current_date|localtimestamp|clock_timestamp|statement_timestamp|transaction_timestamp)\b"
    r"|['\"][^'\"\n]*(?<![.\w])now\(\)",
    re.IGNORECASE,
)


def test_no_app_code_asks_the_database_for_the_time():
    offenders = []
    for app in ("crm", "leads", "nurturing", "workspace"):
        for path in sorted((ROOT / app).rglob("*.py")):
            for number, line in enumerate(path.read_text().splitlines(), 1):
                code = line.split("#", 1)[0]
                if DATABASE_CLOCK.search(code):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "Pass the app's time (timezone.now()) as a parameter instead:\n" + "\n".join(offenders)


def test_the_database_clock_check_catches_each_way_of_asking():
    for sql in ('"WHERE due_at <= now()"', "Now()", "'SELECT CURRENT_TIMESTAMP'", "clock_timestamp"):
        assert DATABASE_CLOCK.search(sql), sql
    for python in ("at = timezone.now()", 'log("sent", timezone.now())', "self._now()", "now()"):
        assert not DATABASE_CLOCK.search(python), python
