import pytest


@pytest.fixture
def rep_user(db):
    from tests.factories import rep

    return rep(username="rep1")


@pytest.fixture
def other_rep(db):
    from tests.factories import rep

    return rep(username="rep2")


@pytest.fixture
def manager_user(db):
    from tests.factories import manager

    return manager(username="manager")


@pytest.fixture
def marketer_user(db):
    from tests.factories import marketer

    return marketer(username="marketer")
