import pytest

from tests.nurturing.conftest import mailbox, sent, webhooks  # noqa: F401  (the emails' fixtures, shared)
from tests.workspace.conftest import no_role_user, rep_client  # noqa: F401


@pytest.fixture(autouse=True)
def settled(settings):
    settings.CRM_EVENT_SETTLE_SECONDS = 0
