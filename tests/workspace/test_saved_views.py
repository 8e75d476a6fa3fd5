"""Saved views of the Leads list: a user's named filters and sort, their own, shown as quick links."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.urls import reverse

from workspace import services
from workspace.models import SavedView

NOW = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)
LIST = reverse("workspace:lead_list")
SAVE = reverse("workspace:saved_view_save")


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def test_a_rep_saves_the_current_filters_and_sort_and_finds_them_above_the_list(rep_client, rep_user):
    response = rep_client.post(SAVE, {"name": "  Hot   leads ", "query": "status=new&sort=score&page=3"})
    assert response["Location"] == f"{LIST}?status=new&sort=score"
    view = SavedView.objects.get(user=rep_user)
    assert (view.name, view.query, view.created_at) == ("Hot leads", "status=new&sort=score", NOW)
    page = rep_client.get(LIST).content.decode()
    assert f'href="{LIST}?status=new&amp;sort=score"' in page and ">Hot leads</a>" in page


def test_the_open_view_is_marked_current(rep_client, rep_user):
    services.saved_view_create(user=rep_user, name="Hot", query="sort=score")
    assert 'aria-current="page">Hot</a>' in rep_client.get(LIST, {"sort": "score"}).content.decode()


def test_saving_a_name_again_replaces_that_views_filters(rep_user):
    services.saved_view_create(user=rep_user, name="Mine", query="status=new")
    services.saved_view_create(user=rep_user, name="Mine", query="status=contacted")
    assert list(SavedView.objects.values_list("name", "query")) == [("Mine", "status=contacted")]


def test_a_view_without_a_name_is_refused_with_a_message(rep_client):
    response = rep_client.post(SAVE, {"name": "  ", "query": "status=new"}, follow=True)
    assert "Name the view" in response.content.decode()
    assert not SavedView.objects.exists()


def test_views_are_each_users_own(client, rep_client, rep_user, other_rep):
    mine = services.saved_view_create(user=rep_user, name="Mine only", query="status=new")
    client.force_login(other_rep)
    assert "Mine only" not in client.get(LIST).content.decode()
    assert client.post(reverse("workspace:saved_view_delete", args=[mine.pk])).status_code == 404
    assert SavedView.objects.filter(pk=mine.pk).exists()
    client.post(SAVE, {"name": "Mine only", "query": "status=lost"})
    assert SavedView.objects.filter(name="Mine only").count() == 2


def test_the_owner_deletes_a_view(rep_client, rep_user):
    view = services.saved_view_create(user=rep_user, name="Old", query="")
    response = rep_client.post(reverse("workspace:saved_view_delete", args=[view.pk]))
    assert response["Location"] == LIST
    assert not SavedView.objects.exists()


def test_the_service_refuses_to_delete_someone_elses_view(rep_user, other_rep):
    view = services.saved_view_create(user=rep_user, name="Mine", query="")
    with pytest.raises(services.PermissionDenied):
        services.saved_view_delete(view=view, by=other_rep)
    assert SavedView.objects.filter(pk=view.pk).exists()


def test_a_hostile_view_name_and_query_are_escaped(rep_client, rep_user):
    rep_client.post(SAVE, {"name": "<script>alert(1)</script>", "query": 'q="><script>x</script>'})
    page = rep_client.get(LIST).content.decode()
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>x</script>" not in page
