"""Logging in: how long a login lasts."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.conf import settings
from django.urls import reverse

pytestmark = pytest.mark.django_db

MONDAY_9AM = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_a_login_lasts_twelve_hours_not_two_weeks(client, rep_user):
    with time_machine.travel(MONDAY_9AM, tick=False):
        response = client.post(reverse("login"), {"username": "rep1", "password": "pw"})
        assert response.status_code == 302
        cookie = response.cookies[settings.SESSION_COOKIE_NAME]
        assert cookie["max-age"] == 12 * 60 * 60
        assert cookie["expires"] == "Mon, 02 Mar 2026 21:00:00 GMT"
        assert client.get(reverse("workspace:today")).status_code == 200

    with time_machine.travel(MONDAY_9AM + timedelta(hours=12, minutes=1), tick=False):
        response = client.get(reverse("workspace:today"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
