"""Fixtures the fault tests share."""

import pytest

from tests.faults.harness import SlowSmtpSink


@pytest.fixture
def slow_smtp_sink():
    """The SMTP server on loopback, a few milliseconds per message (a fast provider's pace): a batch is mid-send
    long enough for a fault to catch it there."""
    with SlowSmtpSink(delay=0.005) as sink:
        yield sink
