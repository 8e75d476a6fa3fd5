"""The beat's entries and the thin tasks they tick."""

from datetime import timedelta

from celery.schedules import crontab
from django.conf import settings as django_settings
from django.utils import timezone

from leads import services as lead_services
from notifications import tasks
from notifications.models import Notification
from tests.factories import LeadFactory


def test_the_beat_reads_the_log_every_15_seconds_checks_due_work_every_minute_and_sends_digests_at_seven():
    schedule = {entry["task"]: entry["schedule"] for entry in django_settings.CELERY_BEAT_SCHEDULE.values()}
    assert schedule["notifications.tasks.notify_from_events"] <= 15
    assert schedule["notifications.tasks.check_due"] == 60
    assert schedule["notifications.tasks.send_digests"] == crontab(hour=7, minute=0)


def test_the_tasks_notify_of_an_assignment_and_a_task_due_and_running_them_again_adds_nothing(manager_user, rep_user):
    lead = LeadFactory(owner=None)
    lead_services.lead_assign_owner(leads=[lead], owner=rep_user, by=manager_user)
    lead_services.task_create(assignee=rep_user, lead=lead, title="Call", due_at=timezone.now() + timedelta(minutes=5),
                              by=manager_user)
    for _ in range(2):
        tasks.notify_from_events()
        tasks.check_due()
        tasks.send_digests()
    assert sorted(Notification.objects.values_list("kind", flat=True)) == ["assigned", "task_due"]
