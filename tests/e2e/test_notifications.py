"""A rep sees the bell light up when their lead replies, opens the notification, lands on the lead and the count
drops, in a real browser under the Content-Security-Policy."""

import re

import pytest
from django.utils import timezone

from notifications.models import Notification
from notifications.services import notifications_from_events
from nurturing.engagement import IncomingEvent, event_record
from nurturing.models import EmailEvent
from tests.e2e.test_content_security_policy import watch_for_violations
from tests.factories import LeadFactory, rep

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_a_reply_lights_the_bell_and_opening_it_lands_on_the_lead(new_page, artifacts, settings):
    settings.CRM_EVENT_SETTLE_SECONDS = 0
    owner = rep(username="belle")
    lead = LeadFactory(owner=owner, first_name="Ada", last_name="<i>Replied</i>")
    # What the inbound webhook does with a reply it matched to the lead, then the reader's beat tick.
    event_record(IncomingEvent(provider="amazon_ses", kind=EmailEvent.Kind.REPLIED, occurred_at=timezone.now(),
                               recipient=lead.email, lead=lead, message_id="reply-1@mail.example"))
    notifications_from_events()

    page = new_page()
    violations = watch_for_violations(page)
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("belle")
    page.get_by_label("Password").fill("pw")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/today/$"))

    bell = page.locator("#notifications-bell")
    assert bell.locator("[data-unread]").inner_text() == "1"
    bell.click()
    page.wait_for_url(re.compile(r"/notifications/$"))
    page.get_by_role("button", name="Ada <i>Replied</i> replied").click()
    page.wait_for_url(re.compile(rf"/leads/{lead.pk}/$"))
    assert page.locator("#notifications-bell [data-unread]").count() == 0
    page.screenshot(path=artifacts / "notifications.png", full_page=True)

    assert Notification.objects.get().read_at is not None
    assert violations == []
