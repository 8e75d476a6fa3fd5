"""Tags on the reps' lead page: added and removed through the tag service, with and without htmx; a tag's name is
shown as text; the lead list filters by tag."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.urls import reverse

from core.models import DomainEvent
from leads.models import LeadTag
from leads.tags import lead_tag_add
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def test_a_rep_adds_a_tag_to_their_lead_without_javascript_and_sees_it(rep_client, rep_user, own_lead):
    response = rep_client.post(reverse("workspace:lead_tag_add", args=[own_lead.pk]), {"tag": "  Webinar 2026 "})

    assert response.status_code == 302 and response.url == reverse("workspace:lead_detail", args=[own_lead.pk])
    page = rep_client.get(response.url).content.decode()
    assert "Webinar 2026" in page.split('id="lead-tags"')[1].split("</ul>")[0]
    assert "Tagged “Webinar 2026”." in page
    assert DomainEvent.objects.filter(type="lead.tagged", lead_id=own_lead.pk, actor_user=rep_user).count() == 1


def test_with_htmx_the_lead_page_is_redrawn_and_a_tag_is_removed_with_its_button(rep_client, rep_user, own_lead):
    lead_tag_add(lead=own_lead, name="VIP", by=rep_user)
    htmx = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "lead-main"}
    page = rep_client.get(reverse("workspace:lead_detail", args=[own_lead.pk])).content.decode()
    assert 'aria-label="Remove the tag VIP"' in page

    response = rep_client.post(reverse("workspace:lead_tag_remove", args=[own_lead.pk]), {"tag": "VIP"}, **htmx)

    body = response.content.decode()
    assert response.status_code == 200 and 'id="lead-main"' in body and "Tag “VIP” removed." in body
    assert "No tag." in body and not LeadTag.objects.exists()
    assert DomainEvent.objects.filter(type="lead.untagged", lead_id=own_lead.pk).count() == 1


def test_an_empty_tag_is_refused_with_the_services_message(rep_client, own_lead):
    response = rep_client.post(reverse("workspace:lead_tag_add", args=[own_lead.pk]), {"tag": "   "}, follow=True)
    assert "Write the tag" in response.content.decode() and not LeadTag.objects.exists()


def test_a_hostile_tag_name_is_shown_as_text_on_the_lead_page(rep_client, rep_user, own_lead):
    lead_tag_add(lead=own_lead, name="<script>alert(1)</script>", by=rep_user)
    page = rep_client.get(reverse("workspace:lead_detail", args=[own_lead.pk])).content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_a_rep_cannot_tag_another_reps_lead_and_sees_no_tag_form_there(client, rep_user, other_rep):
    theirs = LeadFactory(owner=other_rep)
    pool = LeadFactory()
    client.force_login(rep_user)
    assert client.post(reverse("workspace:lead_tag_add", args=[theirs.pk]), {"tag": "VIP"}).status_code == 404
    assert client.post(reverse("workspace:lead_tag_add", args=[pool.pk]), {"tag": "VIP"}).status_code == 403
    assert 'id="lead-tag-form"' not in client.get(reverse("workspace:lead_detail", args=[pool.pk])).content.decode()
    assert not LeadTag.objects.exists()


def test_a_marketer_tags_any_lead_from_its_page(client, marketer_user, other_rep):
    lead = LeadFactory(owner=other_rep)
    client.force_login(marketer_user)
    client.post(reverse("workspace:lead_tag_add", args=[lead.pk]), {"tag": "Trade fair"})
    assert list(lead.tags.values_list("name", flat=True)) == ["Trade fair"]


def test_the_lead_list_filters_by_tag_in_any_case(rep_client, rep_user):
    tagged = LeadFactory(owner=rep_user, first_name="Tagged")
    LeadFactory(owner=rep_user, first_name="Plain")
    lead_tag_add(lead=tagged, name="Spring Fair", by=rep_user)

    page = rep_client.get(reverse("workspace:lead_list"), {"tag": "spring  fair"}).content.decode()

    assert "Tagged" in page and "Plain" not in page
