"""Personal API tokens: shown once, kept as a hash, scoped, expiring, revocable by their owner or a manager."""

import hashlib
import re
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from api.models import ApiToken
from api.services import api_token_create, api_token_revoke
from core.models import DomainEvent
from tests.api.conftest import Api, assert_problem, token_for
from tests.factories import UserFactory

LEADS = "/api/v1/leads/"


def test_a_token_is_kept_only_as_its_hash(frozen, rep_user):
    made = api_token_create(user=rep_user, name="Sync", scopes=["leads:read"],
                            expires_at=timezone.now() + timedelta(days=30), by=rep_user)
    assert re.fullmatch(r"crm_[0-9a-f]{8}_[A-Za-z0-9_-]{40,}", made.raw)
    stored = ApiToken.objects.get()
    assert stored.token_hash == hashlib.sha256(made.raw.encode()).hexdigest()
    assert made.raw.split("_")[1] == stored.prefix
    assert made.raw not in str(ApiToken.objects.values().get())


def test_making_a_token_is_in_the_event_log(frozen, rep_user):
    made = api_token_create(user=rep_user, name="Sync", scopes=["leads:read"],
                            expires_at=timezone.now() + timedelta(days=1), by=rep_user)
    event = DomainEvent.objects.get(type="api_token.created")
    assert (event.subject_id, event.actor_user_id, event.payload["scopes"]) == (made.token.pk, rep_user.pk, ["leads:read"])


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": " "}, "name"),
        ({"scopes": []}, "scopes"),
        ({"scopes": ["leads:delete"]}, "scopes"),
        ({"expires_at": "past"}, "expires_at"),
        ({"expires_at": "too far"}, "expires_at"),
    ],
)
def test_a_token_needs_a_name_known_scopes_and_a_near_future_expiry(frozen, rep_user, fields, field):
    now = timezone.now()
    when = {"past": now - timedelta(seconds=1), "too far": now + timedelta(days=366)}
    values = {"name": "Sync", "scopes": ["leads:read"], "expires_at": now + timedelta(days=30), **fields}
    values["expires_at"] = when.get(values["expires_at"], values["expires_at"])
    with pytest.raises(ValidationError) as caught:
        api_token_create(user=rep_user, by=rep_user, **values)
    assert field in caught.value.message_dict
    assert not ApiToken.objects.exists()


def test_nobody_makes_a_token_for_someone_else(frozen, rep_user, manager_user):
    with pytest.raises(ValidationError):
        api_token_create(user=rep_user, name="x", scopes=["leads:read"],
                         expires_at=timezone.now() + timedelta(days=1), by=manager_user)


def test_a_valid_token_acts_as_its_user(rep_api):
    assert rep_api.get(LEADS).status_code == 200


@pytest.mark.parametrize(
    "authorization",
    ["", "Bearer", "Bearer crm_00000000_unknown", "Bearer not-ours", "Basic dXNlcjpwdw==", "Bearer a b"],
)
def test_a_missing_or_unknown_token_is_401(frozen, db, authorization):
    api = Api(None)
    response = api.get(LEADS, headers={"Authorization": authorization} if authorization else None)
    assert_problem(response, 401)
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_an_expired_token_is_401(frozen, rep_user):
    api = Api(token_for(rep_user, days=1))
    assert api.get(LEADS).status_code == 200
    frozen.shift(timedelta(days=1))
    body = assert_problem(api.get(LEADS), 401)
    assert "expired" in body["detail"]


def test_a_revoked_token_is_401_at_once(frozen, rep_user):
    raw = token_for(rep_user)
    api_token_revoke(token=ApiToken.objects.get(), by=rep_user)
    body = assert_problem(Api(raw).get(LEADS), 401)
    assert "revoked" in body["detail"]


def test_a_deactivated_users_token_is_401(frozen, rep_user):
    api = Api(token_for(rep_user))
    rep_user.is_active = False
    rep_user.save()
    assert_problem(api.get(LEADS), 401)


def test_a_token_without_the_scope_is_403_naming_it(frozen, rep_user):
    api = Api(token_for(rep_user, scopes=["events:read"]))
    body = assert_problem(api.get(LEADS), 403)
    assert body["missing_scope"] == "leads:read"
    assert "leads:read" in body["detail"]
    write = Api(token_for(rep_user, scopes=["leads:read"]))
    body = assert_problem(write.post(LEADS, {"email": "a@example.org"}), 403)
    assert body["missing_scope"] == "leads:write"


def test_a_user_without_a_role_is_403(frozen, db):
    nobody = UserFactory(username="nobody")
    ApiToken.objects.create(user=nobody, name="old", prefix="deadbeef",
                            token_hash=hashlib.sha256(b"crm_deadbeef_x").hexdigest(), scopes=["leads:read"],
                            expires_at=timezone.now() + timedelta(days=1))
    assert_problem(Api("crm_deadbeef_x").get(LEADS), 403)


def test_last_use_is_written_at_most_once_a_minute(frozen, rep_user):
    api = Api(token_for(rep_user))
    token = ApiToken.objects.get()
    assert token.last_used_at is None
    api.get(LEADS)
    first = ApiToken.objects.get().last_used_at
    assert first == timezone.now()
    frozen.shift(timedelta(seconds=59))
    api.get(LEADS)
    assert ApiToken.objects.get().last_used_at == first
    frozen.shift(timedelta(seconds=1))
    api.get(LEADS)
    assert ApiToken.objects.get().last_used_at == first + timedelta(minutes=1)


def test_a_manager_may_revoke_anyones_token_and_another_rep_may_not(frozen, rep_user, other_rep, manager_user):
    token_for(rep_user)
    token = ApiToken.objects.get()
    with pytest.raises(PermissionDenied):
        api_token_revoke(token=token, by=other_rep)
    assert ApiToken.objects.get().revoked_at is None
    api_token_revoke(token=token, by=manager_user)
    token = ApiToken.objects.get()
    assert (token.revoked_at, token.revoked_by) == (timezone.now(), manager_user)
    assert DomainEvent.objects.filter(type="api_token.revoked", actor_user_id=manager_user.pk).count() == 1


def test_the_tokens_page_shows_a_new_token_once(frozen, client, rep_user):
    client.force_login(rep_user)
    response = client.post(reverse("api:tokens"), {"name": "Website sync", "scopes": ["leads:read", "events:read"],
                                                   "days": "90"})
    assert response.status_code == 200
    raw = re.search(r"crm_[0-9a-f]{8}_[A-Za-z0-9_-]+", response.content.decode()).group(0)
    token = ApiToken.objects.get()
    assert (token.name, token.scopes, token.expires_at) == ("Website sync", ["events:read", "leads:read"],
                                                            timezone.now() + timedelta(days=90))
    assert response["Cache-Control"] == "no-store"
    listing = client.get(reverse("api:tokens")).content.decode()
    assert raw not in listing
    assert f"crm_{token.prefix}_" in listing
    assert Api(raw).get(LEADS).status_code == 200


def test_the_tokens_page_refuses_a_token_without_scopes(frozen, client, rep_user):
    client.force_login(rep_user)
    response = client.post(reverse("api:tokens"), {"name": "Sync", "days": "30"})
    assert response.status_code == 422
    assert not ApiToken.objects.exists()


def test_the_tokens_page_lists_only_my_tokens_and_revokes_them(frozen, client, rep_user, other_rep):
    token_for(rep_user, name="mine")
    token_for(other_rep, name="theirs")
    client.force_login(rep_user)
    page = client.get(reverse("api:tokens")).content.decode()
    assert "mine" in page and "theirs" not in page
    theirs = ApiToken.objects.get(name="theirs")
    assert client.post(reverse("api:token_revoke", args=[theirs.pk])).status_code == 404
    mine = ApiToken.objects.get(name="mine")
    assert client.post(reverse("api:token_revoke", args=[mine.pk])).status_code == 302
    assert ApiToken.objects.get(name="mine").revoked_at is not None
    assert ApiToken.objects.get(name="theirs").revoked_at is None


def test_a_manager_revokes_any_token_in_the_admin(frozen, client, rep_user, manager_user):
    token_for(rep_user)
    client.force_login(manager_user)
    changelist = reverse("admin:api_apitoken_changelist")
    assert client.get(changelist).status_code == 200
    token = ApiToken.objects.get()
    client.post(changelist, {"action": "revoke", "_selected_action": [token.pk]})
    assert ApiToken.objects.get().revoked_by == manager_user


def test_reps_and_marketers_do_not_see_tokens_in_the_admin(frozen, client, marketer_user):
    client.force_login(marketer_user)
    assert client.get(reverse("admin:api_apitoken_changelist")).status_code == 403
