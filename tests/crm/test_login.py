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


# --- Throttling: too many wrong passwords lock the username at that address ------------------

OFFICE, ELSEWHERE = "203.0.113.7", "198.51.100.9"
LOGIN_PAGES = {"site": ("login", "rep1"), "admin": ("admin:login", "manager")}


@pytest.fixture(params=LOGIN_PAGES, ids=list(LOGIN_PAGES))
def login_page(request, rep_user, manager_user):
    url_name, username = LOGIN_PAGES[request.param]
    return reverse(url_name), username


def log_in(client, url, username, password, address=OFFICE, **headers):
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=address, **headers)


def is_logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def fail(client, url, username, times=5, **kwargs):
    for _ in range(times):
        log_in(client, url, username, "wrong", **kwargs)


def test_five_wrong_passwords_lock_the_account_at_that_address_even_for_the_right_one(client, login_page, settings):
    settings.TIME_ZONE = "Europe/Berlin"  # the page tells the time in the account's zone: 09:00 UTC is 10:00 there
    url, username = login_page
    with time_machine.travel(MONDAY_9AM, tick=False):
        fail(client, url, username, times=4)
        assert log_in(client, url, username, "wrong").status_code == 429

        response = log_in(client, url, username, "pw")

    assert response.status_code == 429 and not is_logged_in(client)
    page = response.content.decode()
    assert "Account locked for now" in page and "locked for 15 minutes" in page
    assert "Try again after <strong>10:15</strong>" in page and "Ask a manager to unlock the account" in page
    assert response["Retry-After"] == "900"


def test_the_same_account_from_another_address_still_logs_in(client, login_page):
    url, username = login_page
    fail(client, url, username)

    response = log_in(client, url, username, "pw", address=ELSEWHERE)

    assert response.status_code == 302 and is_logged_in(client)


def test_another_account_at_the_locked_address_still_logs_in(client, rep_user, other_rep):
    fail(client, reverse("login"), "rep1")
    assert log_in(client, reverse("login"), "rep2", "pw").status_code == 302


def test_the_account_logs_in_again_after_the_cool_off(client, login_page):
    url, username = login_page
    with time_machine.travel(MONDAY_9AM, tick=False):
        fail(client, url, username)
    with time_machine.travel(MONDAY_9AM + timedelta(minutes=15, seconds=1), tick=False):
        response = log_in(client, url, username, "pw")
        assert response.status_code == 302 and is_logged_in(client)


def test_each_try_during_the_lockout_starts_the_wait_again(client, login_page):
    url, username = login_page
    with time_machine.travel(MONDAY_9AM, tick=False):
        fail(client, url, username)
    with time_machine.travel(MONDAY_9AM + timedelta(minutes=14), tick=False):
        assert log_in(client, url, username, "pw").status_code == 429
    with time_machine.travel(MONDAY_9AM + timedelta(minutes=16), tick=False):
        assert log_in(client, url, username, "pw").status_code == 429  # 15 minutes after 9:14, not 9:00
    with time_machine.travel(MONDAY_9AM + timedelta(minutes=16 + 15, seconds=1), tick=False):
        response = log_in(client, url, username, "pw")
        assert response.status_code == 302 and is_logged_in(client)


def test_a_manager_unlocks_an_account_in_the_admin(client, rep_user, manager_user):
    from axes.models import AccessAttempt

    fail(client, reverse("login"), "rep1")
    attempt = AccessAttempt.objects.get(username="rep1")

    client.force_login(manager_user)
    listing = client.get(reverse("admin:axes_accessattempt_changelist"))
    assert listing.status_code == 200 and "rep1" in listing.content.decode()
    unlock = client.post(
        reverse("admin:axes_accessattempt_changelist"),
        {"action": "delete_selected", "_selected_action": [attempt.pk], "post": "yes"},
    )
    assert unlock.status_code == 302 and not AccessAttempt.objects.exists()
    client.logout()

    assert log_in(client, reverse("login"), "rep1", "pw").status_code == 302


def test_without_a_trusted_proxy_x_forwarded_for_is_ignored(client, rep_user):
    for n in range(5):
        log_in(client, reverse("login"), "rep1", "wrong", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}")
    assert log_in(client, reverse("login"), "rep1", "pw", HTTP_X_FORWARDED_FOR=ELSEWHERE).status_code == 429


@pytest.fixture
def behind_one_proxy(settings):
    """What CRM_TRUSTED_PROXIES=1 sets (tests/crm/test_settings.py checks that it does)."""
    settings.AXES_IPWARE_META_PRECEDENCE_ORDER = ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR")
    settings.AXES_IPWARE_PROXY_COUNT = 0
    settings.IPWARE_STRICT = False


def test_behind_the_proxy_the_address_it_adds_counts_not_one_the_client_writes(client, rep_user, behind_one_proxy):
    proxy = "192.0.2.10"
    for n in range(5):  # the client makes up a first address each time; the proxy appends the real one
        log_in(client, reverse("login"), "rep1", "wrong", address=proxy, HTTP_X_FORWARDED_FOR=f"198.51.100.{n}, {OFFICE}")
    assert log_in(client, reverse("login"), "rep1", "pw", address=proxy, HTTP_X_FORWARDED_FOR=OFFICE).status_code == 429

    response = log_in(client, reverse("login"), "rep1", "pw", address=proxy, HTTP_X_FORWARDED_FOR=ELSEWHERE)
    assert response.status_code == 302 and is_logged_in(client)
