"""The batch services behind imports hold the rules of lead_create and lead_update."""

import pytest
import time_machine
from django.core.exceptions import ValidationError

from core.events import Actor, EventType
from core.models import DomainEvent
from leads.importing import leads_import_batch, leads_import_update
from leads.models import Company, Lead, StageChange
from leads.pipeline import LeadStatus
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def frozen_clock():
    with time_machine.travel("2026-03-02 09:00Z", tick=False):
        yield


def test_a_batch_is_made_like_leads_made_one_by_one(manager_user):
    leads = leads_import_batch(rows=[{"email": " Ann@Example.com ", "company": "Acme"}, {"phone": "+44 20 7946 0000"}],
                               by=manager_user)

    ann = Lead.objects.get(pk=leads[0].pk)
    assert (ann.email, ann.status, ann.company.name, ann.search_text) == (
        "ann@example.com", LeadStatus.NEW, "Acme", "ann@example.com acme")
    assert StageChange.objects.filter(to_status=LeadStatus.NEW, changed_by=manager_user).count() == 2
    assert DomainEvent.objects.filter(type=EventType.LEAD_CREATED, actor_user=manager_user).count() == 2


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"first_name": "No contact"}], "Give an email address or a phone number"),
        ([{"email": "a@example.com"}, {"email": "A@example.com"}], "Two rows of the batch have the same email"),
        ([{"email": "taken@example.com"}], "Another lead already has the email address taken@example.com"),
        ([{"email": "a@example.com", "timezone": "Mars/Olympus"}], "is not a known time zone"),
        ([{"email": "a@example.com", "created_at": "2027-01-01T00:00Z"}], "in the future"),
    ],
)
def test_a_batch_with_one_bad_row_writes_nothing(rows, message):
    LeadFactory(email="taken@example.com", company=None)
    from django.utils.dateparse import parse_datetime

    rows = [{k: parse_datetime(v) if k == "created_at" else v for k, v in row.items()} for row in [{"email": "ok@example.com", "company": "New Co"}, *rows]]

    with pytest.raises(ValidationError, match=message):
        leads_import_batch(rows=rows, made_by=Actor.system("test"))

    assert list(Lead.objects.values_list("email", flat=True)) == ["taken@example.com"]
    assert not Company.objects.filter(name="New Co").exists()


def test_an_update_that_would_take_another_leads_email_writes_nothing():
    LeadFactory(email="taken@example.com")
    lead = LeadFactory(email="", phone="+1 555 0100", first_name="")

    with pytest.raises(ValidationError, match="Another lead already has the email address taken@example.com"):
        leads_import_update(changes=[(lead, {"email": "Taken@example.com", "first_name": "X"})], made_by=Actor.system("test"))

    lead.refresh_from_db()
    assert (lead.email, lead.first_name) == ("", "")
