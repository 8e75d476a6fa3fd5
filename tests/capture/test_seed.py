import pytest
from django.core.management import call_command
from django.urls import reverse

from capture.models import CaptureForm

pytestmark = pytest.mark.django_db


def test_the_demo_forms_are_made_once_and_their_pages_open(client):
    from tests.factories import marketer

    marketer(username="marketer")
    call_command("seed_demo_forms", if_empty=True, verbosity=0)
    call_command("seed_demo_forms", if_empty=True, verbosity=0)

    assert sorted(CaptureForm.objects.values_list("slug", flat=True)) == ["book-a-demo", "pipeline-guide"]
    for slug in ("book-a-demo", "pipeline-guide"):
        page = client.get(reverse("capture:hosted", args=[slug]))
        assert page.status_code == 200 and 'name="crm_token"' in page.content.decode()
