import pytest
from django.core.management import call_command

from leads.models import FormSubmission
from leads.pipeline import OPEN_STATUSES
from nurturing.models import Delivery, Enrollment, Sequence, Step, Suppression

pytestmark = pytest.mark.django_db


def test_demo_sequences_are_active_with_open_unsuppressed_leads_enrolled():
    call_command("seed_demo", "--leads", "60", stdout=open("/dev/null", "w"))
    call_command("seed_demo_sequences", "--if-empty", stdout=open("/dev/null", "w"))

    assert Sequence.objects.filter(status="active").count() == 2
    enrollments = Enrollment.objects.select_related("lead")
    assert enrollments.exists()
    suppressed = set(Suppression.objects.values_list("email", flat=True))
    for enrollment in enrollments:
        assert enrollment.lead.status in OPEN_STATUSES
        assert enrollment.lead.email not in suppressed
    assert Delivery.objects.count() == enrollments.count()
    guide = Enrollment.objects.filter(sequence__name="Guide download follow-up")
    assert FormSubmission.objects.filter(resource__slug="pipeline-checklist").count() == guide.count() > 0
    assert Step.objects.get(sequence__name="Guide download follow-up", position=2).click_stage_action == "mql"

    call_command("seed_demo_sequences", "--if-empty", stdout=open("/dev/null", "w"))
    assert Sequence.objects.count() == 2
