import pytest

from tests.factories import LeadFactory, UserFactory


@pytest.fixture
def own_lead(rep_user):
    """A new lead owned by rep1."""
    return LeadFactory(first_name="Ada", last_name="Lovelace", owner=rep_user)


@pytest.fixture
def pool_lead(db):
    return LeadFactory(first_name="Pool", last_name="Person", owner=None)


@pytest.fixture
def no_role_user(db):
    return UserFactory(username="nobody")


@pytest.fixture
def rep_client(client, rep_user):
    client.force_login(rep_user)
    return client
