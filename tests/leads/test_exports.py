"""Exporting leads' personal data: only with the export permission (managers), and every export on record."""

import csv
import io
from datetime import UTC, datetime

import pytest
import time_machine
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from leads.exports import LEADS, list_export
from leads.models import Lead, LeadExport
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:leads_lead_changelist")
EXPORTED_AT = datetime(2026, 3, 2, 10, 30, tzinfo=UTC)


def export(client, leads, query="", **data):
    payload = {"action": "export_csv", ACTION_CHECKBOX_NAME: [lead.pk for lead in leads], "index": 0, **data}
    return client.post(CHANGELIST + query, payload)


def emails_in(response):
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    return sorted(row["Email"] for row in csv.DictReader(io.StringIO(text)))


def test_a_manager_exports_the_ticked_leads_and_the_export_is_on_record(client, manager_user):
    wanted, _ = LeadFactory(), LeadFactory()
    client.force_login(manager_user)

    with time_machine.travel(EXPORTED_AT, tick=False):
        response = export(client, [wanted], "?status__exact=new")

    assert response["Content-Type"].startswith("text/csv")
    assert emails_in(response) == [wanted.email]
    record = LeadExport.objects.get()
    assert (record.exported_by, record.exported_at, record.row_count) == (manager_user, EXPORTED_AT, 1)
    assert (record.lead_ids, record.filters) == ([wanted.pk], "status__exact=new")


def test_exporting_every_lead_matching_the_filters_records_the_filters(client, manager_user, rep_user):
    theirs = [LeadFactory(owner=rep_user), LeadFactory(owner=rep_user)]
    LeadFactory()
    client.force_login(manager_user)

    response = export(client, theirs[:1], f"?owner={rep_user.pk}", select_across="1")

    assert emails_in(response) == sorted(lead.email for lead in theirs)
    record = LeadExport.objects.get()
    assert (record.row_count, record.lead_ids, record.filters) == (2, [], f"owner={rep_user.pk}")


def offered_actions(client):
    form = client.get(CHANGELIST).context["action_form"]
    return [] if form is None else [name for name, _ in form.fields["action"].choices]


def test_the_export_action_is_offered_to_managers_only(client, manager_user, marketer_user):
    LeadFactory()
    client.force_login(manager_user)
    assert "export_csv" in offered_actions(client)
    client.force_login(marketer_user)
    assert "export_csv" not in offered_actions(client)


def test_a_marketers_forged_export_post_is_refused_and_exports_nothing(client, marketer_user):
    lead = LeadFactory()
    client.force_login(marketer_user)

    response = export(client, [lead], select_across="1")

    # A marketer's only actions on leads are to tag them and enroll them: the forged export is no action, and no file.
    assert offered_actions(client) == ["", "tag_leads", "enroll_in_sequence"]
    assert response.status_code == 302 and response["Location"] == CHANGELIST
    assert "No action selected." in [str(m) for m in get_messages(response.wsgi_request)]
    assert not LeadExport.objects.exists()


def test_a_forged_export_post_is_refused_when_other_actions_are_allowed(client, marketer_user):
    lead = LeadFactory()
    marketer_user.user_permissions.add(Permission.objects.get(codename="change_lead"))  # offers assign, move, archive
    client.force_login(marketer_user)
    assert "archive" in offered_actions(client) and "export_csv" not in offered_actions(client)

    response = export(client, [lead], select_across="1")

    assert response.status_code == 302 and response["Location"] == CHANGELIST
    assert "No action selected." in [str(m) for m in get_messages(response.wsgi_request)]
    assert not LeadExport.objects.exists()


def test_a_reps_export_post_is_sent_to_the_admin_login_and_exports_nothing(client, rep_user):
    lead = LeadFactory(owner=rep_user)
    client.force_login(rep_user)

    response = export(client, [lead])

    assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))
    assert not LeadExport.objects.exists()


def test_the_export_service_refuses_who_may_not_export_and_records_nothing(marketer_user, rep_user):
    LeadFactory()
    for user in (marketer_user, rep_user):
        with pytest.raises(PermissionDenied):
            list_export(spec=LEADS, rows=Lead.objects.all(), by=user, file_format="csv")
    assert not LeadExport.objects.exists()


def test_managers_read_the_export_log_in_the_admin_and_nobody_changes_it(client, manager_user, marketer_user):
    lead = LeadFactory()
    client.force_login(manager_user)
    export(client, [lead])
    record = LeadExport.objects.get()

    listing = client.get(reverse("admin:leads_leadexport_changelist"))
    assert listing.status_code == 200 and list(listing.context["cl"].result_list) == [record]
    assert f"#{lead.pk}" in listing.content.decode()
    detail = client.get(reverse("admin:leads_leadexport_change", args=[record.pk]))
    assert detail.status_code == 200 and not detail.context["has_change_permission"]
    assert client.get(reverse("admin:leads_leadexport_add")).status_code == 403
    assert client.post(reverse("admin:leads_leadexport_delete", args=[record.pk]), {"post": "yes"}).status_code == 403
    assert LeadExport.objects.filter(pk=record.pk).exists()

    client.force_login(marketer_user)
    assert client.get(reverse("admin:leads_leadexport_changelist")).status_code == 403
