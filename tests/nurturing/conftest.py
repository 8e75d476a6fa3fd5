import pytest


@pytest.fixture
def mailbox():
    """The locmem outbox (settings.test), emptied for the test."""
    from django.core import mail

    mail.outbox = []
    return mail.outbox
