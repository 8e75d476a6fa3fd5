"""The app's icon: pages name it, and /favicon.ico (which browsers ask for where a page names none) answers 200."""

import pytest
from django.contrib.staticfiles import finders
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_favicon_ico_is_the_apps_icon_without_logging_in(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/x-icon"
    assert response.content[:4] == b"\x00\x00\x01\x00"  # an ICO file
    assert "max-age=86400" in response["Cache-Control"]


@pytest.mark.parametrize("url_name", ["login", "admin:login"])
def test_pages_name_the_svg_icon_which_the_static_files_serve(client, url_name):
    page = client.get(reverse(url_name)).content.decode()
    assert '<link rel="icon" href="/static/crm/favicon.svg" type="image/svg+xml">' in page
    assert finders.find("crm/favicon.svg")


def test_the_reps_pages_name_the_icon(client, rep_user):
    client.force_login(rep_user)
    assert 'href="/static/crm/favicon.svg"' in client.get(reverse("workspace:today")).content.decode()
