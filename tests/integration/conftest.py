import pytest

from tests.smtp_sink import SmtpSink


@pytest.fixture
def smtp_sink():
    """A real SMTP server on loopback (aiosmtpd) that keeps what it receives."""
    with SmtpSink() as sink:
        yield sink
