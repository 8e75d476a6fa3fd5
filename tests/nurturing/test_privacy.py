"""A person's consent, export and erasure: the services, then the managers' admin pages."""

import json
from datetime import datetime, timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from leads import services as lead_services
from leads.models import Activity, Customer, Deal, FormSubmission, Lead, LeadExport, Objection, Resource, StageChange, Task
from nurturing import privacy, services
from nurturing.claim import deliveries_claim
from nurturing.dispatch import deliveries_send
from nurturing.engagement import IncomingEvent, event_record
from nurturing.models import Delivery, EmailEvent, Enrollment, Suppression, email_hash
from tests.factories import (
    CampaignFactory,
    CompanyFactory,
    LeadFactory,
    PersonaFactory,
    SourceFactory,
    marketer,
    rep,
    sequence_with_steps,
)

pytestmark = pytest.mark.django_db

ADDRESS = "ada.lovelace@example.org"
CONSENT = "Yes, send me the pricing guide and related emails. I can unsubscribe at any time."


def run_once():
    """One dispatcher step and one worker step, as the tasks do them."""
    token, ids = deliveries_claim(limit=100)
    return deliveries_send(ids=ids, token=token) if ids else None


@pytest.fixture
def person(rep_user, mailbox):
    """Ada: an archived lead row and a live one with the same address, and a bit of everything about her."""
    # A fixed company: its name stays searchable after erasure, and a random one can contain "ada".
    company = CompanyFactory(name="Initech", domain="initech.example")
    old = LeadFactory(first_name="Ada", last_name="Byron", email=ADDRESS, phone="+44 20 7946 0001", owner=rep_user, company=company)
    lead_services.activity_add_note(lead=old, by=rep_user, body="Old row: met Ada at the 2024 fair")
    deal = lead_services.deal_open(lead=old, value="900.50", product="Starter", by=rep_user)
    lead_services.deal_mark_lost(deal=deal, reason="Ada's boss said no", by=rep_user)
    lead_services.lead_archive(leads=[old])

    lead = LeadFactory(
        first_name="Ada", last_name="Lovelace", email=ADDRESS.upper(), phone="+44 20 7946 0000", title="Analyst",
        owner=rep_user, company=company, source=SourceFactory(name="Google Ads"), campaign=CampaignFactory(name="Spring guide"),
        persona=PersonaFactory(name="Analysts"), utm_medium="cpc", utm_content="banner-a", utm_term="engines",
        consent_given_at=timezone.now() - timedelta(days=3), consent_text=CONSENT, consent_source="Pricing guide form",
    )
    lead_services.activity_log_call(lead=lead, by=rep_user, direction="outbound", outcome="connected", body="Ada wants a demo")
    lead_services.activity_log_meeting(lead=lead, by=rep_user, occurred_at=timezone.now(), body="Demo with Ada")
    lead_services.objection_log(lead=lead, by=rep_user, category="price", lead_words="Ada: too pricey for us")
    lead_services.task_create(lead=lead, assignee=rep_user, title="Send Ada the proposal", due_at=timezone.now() + timedelta(days=1))
    guide = Resource.objects.create(name="Pricing guide", slug="pricing-guide")
    lead_services.form_submission_record(lead=lead, form_name="Pricing guide download", resource=guide,
                                         data={"email": ADDRESS, "company_size": "11-50"})

    sequence = sequence_with_steps({}, {"delay": timedelta(days=2)}, name="Guide follow-up")
    enrollment = services.enrollment_create(lead=lead, sequence=sequence)
    assert run_once().sent == 1
    sent = enrollment.deliveries.get(step__position=1)
    event_record(IncomingEvent(provider="test", kind="clicked", occurred_at=timezone.now() + timedelta(minutes=5),
                               event_id="click-1", delivery=sent, url="https://example.com/pricing",
                               user_agent="Mozilla/5.0 (Windows NT 10.0) Chrome/130"))
    # An event for a message we do not know: it carries only the address.
    event_record(IncomingEvent(provider="test", kind="delivered", occurred_at=timezone.now(), event_id="stray-1",
                               message_id="<unknown@elsewhere>", recipient=ADDRESS))

    lead_services.lead_change_stage(lead=lead, to_status="nurturing", by=rep_user, reason="Ada asked to be kept posted")
    mailbox.clear()
    return lead, old


def ids_of(*leads):
    return [lead.pk for lead in leads]


# --- Export ------------------------------------------------------------------------------


def test_the_export_holds_every_kind_of_record_about_the_person_as_plain_json(person, rep_user):
    lead, old = person

    data = privacy.person_export(lead=lead)

    assert json.loads(json.dumps(data)) == data  # no custom encoder needed
    assert data["email"] == ADDRESS
    assert set(data["leads"]) == {str(lead.pk), str(old.pk)}
    mine = data["leads"][str(lead.pk)]
    assert (mine["first_name"], mine["last_name"], mine["email"], mine["phone"]) == ("Ada", "Lovelace", ADDRESS, "+44 20 7946 0000")
    assert mine["consent"]["wording"] == CONSENT and mine["consent"]["how"] == "Pricing guide form"
    assert datetime.fromisoformat(mine["consent"]["given_at"]) == lead.consent_given_at
    assert (mine["owner"], mine["source"], mine["campaign"], mine["persona"]) == (rep_user.username, "Google Ads", "Spring guide", "Analysts")
    assert mine["company"] == lead.company.name
    assert "Ada asked to be kept posted" in [c["reason"] for c in mine["stage_changes"]]
    assert {a["kind"] for a in mine["activities"]} == {"call", "meeting"}
    assert "Ada wants a demo" in [a["body"] for a in mine["activities"]]
    assert mine["objections"][0]["lead_words"] == "Ada: too pricey for us"
    assert mine["tasks"][0]["title"] == "Send Ada the proposal"
    assert mine["form_submissions"][0]["data"] == {"email": ADDRESS, "company_size": "11-50"}
    assert mine["form_submissions"][0]["resource"] == "Pricing guide"
    assert [(e["sequence"], e["status"], e["exit_reason"]) for e in mine["enrollments"]] == [("Guide follow-up", "active", "")]
    sent = next(d for d in mine["deliveries"] if d["status"] == "sent")
    assert sent["to_email"] == ADDRESS and sent["subject"] == "Step 1 for Ada" and "Hello Ada" in sent["body_text"]
    assert datetime.fromisoformat(sent["sent_at"])
    assert [(e["kind"], e["url"], e["by"]) for e in mine["email_events"]] == [("clicked", "https://example.com/pricing", "person")]
    assert [e["recipient"] for e in data["other_email_events"]] == [ADDRESS]
    theirs = data["leads"][str(old.pk)]
    assert theirs["activities"][0]["body"] == "Old row: met Ada at the 2024 fair"
    assert theirs["archived_at"] is not None and theirs["last_name"] == "Byron"
    assert theirs["deals"] == [
        {**theirs["deals"][0], "product": "Starter", "value": "900.50", "currency": "EUR", "status": "lost",
         "lost_reason": "Ada's boss said no"}
    ]
    assert data["suppression"] == {"is_suppressed": False}


def test_the_export_says_since_when_and_why_the_address_is_suppressed(person):
    lead, _ = person
    services.suppression_add(email=ADDRESS, reason=Suppression.Reason.UNSUBSCRIBED, source="link")

    suppression = privacy.person_export(lead=lead)["suppression"]

    assert suppression["is_suppressed"] is True and suppression["reason"] == "unsubscribed"
    assert datetime.fromisoformat(suppression["since"])


def test_the_export_of_a_lead_without_an_address_holds_only_that_lead():
    lead = LeadFactory(email="", phone="+33 1 23 45 67 89")
    LeadFactory(email="", phone="+33 1 23 45 67 89")

    data = privacy.person_export(lead=lead)

    assert list(data["leads"]) == [str(lead.pk)]
    assert data["email"] == "" and data["other_email_events"] == []


# --- Erasure ---------------------------------------------------------------------------


def test_erasing_deletes_the_personal_data_of_every_lead_row_with_the_address(person, manager_user):
    lead, old = person
    ids = ids_of(lead, old)

    result = privacy.person_erase(lead=lead, by=manager_user)

    assert sorted(result.lead_ids) == sorted(ids)
    for model in (Activity, Objection, Task, FormSubmission, Enrollment):
        assert not model.objects.filter(lead_id__in=ids).exists(), model.__name__
    assert not Delivery.objects.filter(enrollment__lead_id__in=ids).exists()
    assert not EmailEvent.objects.exists()  # the lead's and the one that carried only the address
    assert result.deleted["calls, notes and meetings"] == 3 and result.deleted["email events"] == 2
    for row in Lead.objects.filter(pk__in=ids):
        assert (row.first_name, row.last_name, row.email, row.phone, row.title) == ("Erased", "", "", "", "")
        assert (row.utm_medium, row.utm_content, row.utm_term, row.lost_reason) == ("", "", "", "")
        assert (row.consent_given_at, row.consent_text, row.consent_source) == (None, "", "")
        assert row.archived_at is not None and row.erased_at is not None and row.erased_by == manager_user
        assert "ada" not in row.search_text and "lovelace" not in row.search_text
    lead.refresh_from_db()
    assert str(lead) == "Erased"


def test_erasing_keeps_the_address_suppressed_as_its_hash_only(person, manager_user):
    lead, _ = person

    result = privacy.person_erase(lead=lead, by=manager_user)

    suppression = Suppression.objects.get()
    assert result.address_suppressed
    assert (suppression.email, suppression.email_hash, suppression.reason) == ("", email_hash(ADDRESS), Suppression.Reason.ERASED)
    assert services.email_is_suppressed(ADDRESS) and services.email_is_suppressed(ADDRESS.upper())


def test_an_earlier_suppression_keeps_its_reason_and_loses_the_address(person, manager_user):
    lead, _ = person
    services.suppression_add(email=ADDRESS, reason=Suppression.Reason.UNSUBSCRIBED)

    privacy.person_erase(lead=lead, by=manager_user)

    suppression = Suppression.objects.get()
    assert (suppression.email, suppression.reason) == ("", Suppression.Reason.UNSUBSCRIBED)
    assert services.email_is_suppressed(ADDRESS)


def test_erasing_takes_the_person_out_of_every_sequence_and_nothing_more_is_sent(person, manager_user, mailbox):
    lead, _ = person
    other = LeadFactory(email="someone.else@example.org")
    services.enrollment_create(lead=other, sequence=lead.enrollments.get().sequence)
    live = Enrollment.objects.filter(lead=lead, status=Enrollment.Status.ACTIVE)
    assert live.exists() and lead.enrollments.get().deliveries.filter(status=Delivery.Status.SCHEDULED).exists()

    privacy.person_erase(lead=lead, by=manager_user)

    assert not Enrollment.objects.filter(lead=lead).exists()
    for _ in range(3):
        run_once()
    assert [m.to for m in mailbox] == [[other.email]]


def test_erasing_keeps_deals_and_stage_changes_without_their_text(person, manager_user):
    lead, old = person
    ids = ids_of(lead, old)
    changes = StageChange.objects.filter(lead_id__in=ids).count()
    assert StageChange.objects.filter(lead_id__in=ids).exclude(reason="").exists()

    privacy.person_erase(lead=lead, by=manager_user)

    assert StageChange.objects.filter(lead_id__in=ids).count() == changes
    assert set(StageChange.objects.filter(lead_id__in=ids).values_list("reason", flat=True)) == {""}
    deal = Deal.objects.get(lead=old)
    assert (str(deal.value), deal.currency, deal.status, deal.lost_reason) == ("900.50", "EUR", "lost", "")


def test_a_person_customer_keeps_its_deal_and_loses_its_name(manager_user):
    lead = LeadFactory(first_name="Grace", last_name="Hopper", company=None)
    deal = lead_services.lead_convert_to_customer(lead=lead, deal_value=1200)
    exported = privacy.person_export(lead=lead)["leads"][str(lead.pk)]["customer_records"]
    assert [c["name"] for c in exported] == ["Grace Hopper"]

    privacy.person_erase(lead=lead, by=manager_user)

    customer = Customer.objects.get()
    assert customer.name == "Erased" and customer.primary_lead_id == lead.pk
    assert Deal.objects.get(pk=deal.pk).customer == customer


def test_a_later_email_to_an_erased_address_is_never_sent(person, manager_user, mailbox):
    lead, _ = person
    privacy.person_erase(lead=lead, by=manager_user)
    sequence = sequence_with_steps(name="Win-back")

    again = LeadFactory(email=ADDRESS)
    with pytest.raises(ValidationError, match="suppressed"):
        services.enrollment_create(lead=again, sequence=sequence)

    # Enrolled under another address that then changes to the erased one: the dispatcher still stops it.
    moved = LeadFactory(email="new.address@example.org")
    enrollment = services.enrollment_create(lead=moved, sequence=sequence)
    lead_services.lead_archive(leads=[again])
    lead_services.lead_update(lead=moved, email=ADDRESS)
    run_once()

    assert mailbox == []
    assert enrollment.deliveries.get().status == Delivery.Status.SKIPPED


def test_erasing_a_lead_without_an_address_erases_that_row_only(manager_user):
    lead = LeadFactory(first_name="Phone", last_name="Only", email="", phone="+33 1 23 45 67 89")
    twin = LeadFactory(first_name="Phone", last_name="Twin", email="", phone="+33 1 23 45 67 89")

    result = privacy.person_erase(lead=lead, by=manager_user)

    assert result.lead_ids == (lead.pk,) and not result.address_suppressed
    lead.refresh_from_db()
    twin.refresh_from_db()
    assert (lead.first_name, lead.phone) == ("Erased", "")
    assert (twin.first_name, twin.phone, twin.erased_at) == ("Phone", "+33 1 23 45 67 89", None)
    assert not Suppression.objects.exists()


def test_an_error_halfway_leaves_everything_as_it_was(person, manager_user, monkeypatch):
    lead, old = person

    def fail(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(privacy, "_scrub_admin_log", fail)
    with pytest.raises(RuntimeError):
        privacy.person_erase(lead=lead, by=manager_user)

    lead.refresh_from_db()
    assert (lead.first_name, lead.email, lead.erased_at) == ("Ada", ADDRESS, None)
    assert Activity.objects.filter(lead_id__in=ids_of(lead, old)).count() == 3
    assert EmailEvent.objects.count() == 2 and Enrollment.objects.filter(lead=lead, status="active").exists()
    assert not Suppression.objects.exists()


def test_erasing_waits_while_an_email_to_the_person_is_being_sent(person, manager_user):
    lead, _ = person
    Delivery.objects.filter(enrollment__lead=lead, status=Delivery.Status.SCHEDULED).update(status=Delivery.Status.SENDING)

    with pytest.raises(ValidationError, match="being sent at this moment"):
        privacy.person_erase(lead=lead, by=manager_user)

    lead.refresh_from_db()
    assert lead.erased_at is None and lead.first_name == "Ada"


def test_the_admins_history_no_longer_names_the_person(person, manager_user):
    lead, _ = person
    entry = LogEntry.objects.log_actions(user_id=manager_user.pk, queryset=[lead], action_flag=2, change_message="edited",
                                         single_object=True)
    assert entry.object_repr == "Ada Lovelace"

    privacy.person_erase(lead=lead, by=manager_user)

    entry.refresh_from_db()
    assert entry.object_repr == "Erased"


# --- The admin ---------------------------------------------------------------------------


def export_url(lead):
    return reverse("admin:leads_lead_person_export", args=[lead.pk])


def erase_url(lead):
    return reverse("admin:leads_lead_person_erase", args=[lead.pk])


def test_the_lead_page_shows_the_consent_and_a_manager_the_export_and_erase_buttons(client, manager_user, person):
    lead, _ = person
    client.force_login(manager_user)

    page = client.get(reverse("admin:leads_lead_change", args=[lead.pk])).content.decode()

    assert CONSENT in page and "Pricing guide form" in page
    assert f'href="{export_url(lead)}"' in page and "Export (JSON)" in page
    assert f'href="{erase_url(lead)}"' in page and "Erase person…" in page


def test_a_marketer_sees_the_lead_page_without_the_buttons(client, marketer_user, person):
    lead, _ = person
    client.force_login(marketer_user)

    page = client.get(reverse("admin:leads_lead_change", args=[lead.pk]))

    assert page.status_code == 200 and CONSENT in page.content.decode()
    assert export_url(lead) not in page.content.decode() and erase_url(lead) not in page.content.decode()


def test_a_manager_downloads_the_export_as_a_json_file(client, manager_user, person):
    lead, old = person
    client.force_login(manager_user)

    response = client.get(export_url(lead))

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert response["Content-Disposition"] == f"attachment; filename=person-{lead.pk}.json"
    data = json.loads(response.content)
    assert set(data["leads"]) == {str(lead.pk), str(old.pk)}
    assert data["leads"][str(lead.pk)]["consent"]["wording"] == CONSENT
    record = LeadExport.objects.get()  # on the same record as every export of personal data
    assert (record.kind, record.exported_by, record.row_count) == (LeadExport.Kind.PERSON, manager_user, 2)
    assert record.lead_ids == sorted([lead.pk, old.pk])


def test_who_may_erase_but_not_export_gets_no_export_and_nothing_is_recorded(client, person):
    from django.contrib.auth.models import Permission

    lead, _ = person
    eraser = rep(username="eraser", is_staff=True)
    eraser.user_permissions.add(*Permission.objects.filter(codename__in=["view_lead", "change_lead", "delete_lead"]))
    client.force_login(eraser)

    page = client.get(reverse("admin:leads_lead_change", args=[lead.pk])).content.decode()
    assert f'href="{erase_url(lead)}"' in page and export_url(lead) not in page
    assert export_url(lead) not in client.get(erase_url(lead)).content.decode()
    assert client.get(export_url(lead)).status_code == 403
    with pytest.raises(PermissionDenied):
        privacy.person_export_by(lead=lead, by=eraser)
    assert not LeadExport.objects.exists()


def test_the_erase_page_says_what_goes_and_what_stays_and_a_get_changes_nothing(client, manager_user, person):
    lead, _ = person
    client.force_login(manager_user)

    response = client.get(erase_url(lead))

    page = response.content.decode()
    assert response.status_code == 200
    assert "3 calls, notes and meetings" in page
    assert "1 objections" in page and "2 email events" in page and "Kept, without personal data" in page
    assert 'method="post"' in page and "csrfmiddlewaretoken" in page
    lead.refresh_from_db()
    assert (lead.first_name, lead.email, lead.erased_at) == ("Ada", ADDRESS, None)
    assert Activity.objects.filter(lead=lead).exists() and not Suppression.objects.exists()


def test_a_manager_erases_the_person_with_a_confirmed_post(client, manager_user, person):
    lead, old = person
    client.force_login(manager_user)

    unconfirmed = client.post(erase_url(lead), {})
    assert unconfirmed.status_code == 200 and "Tick the box" in unconfirmed.content.decode()
    assert Lead.objects.get(pk=lead.pk).erased_at is None

    response = client.post(erase_url(lead), {"confirm": "on"})

    assert response.status_code == 302 and response["Location"] == reverse("admin:leads_lead_change", args=[lead.pk])
    assert set(Lead.objects.filter(erased_at__isnull=False).values_list("pk", flat=True)) == {lead.pk, old.pk}
    assert services.email_is_suppressed(ADDRESS) and Suppression.objects.get().email == ""
    page = client.get(response["Location"]).content.decode()
    assert "Person erased: 2 lead row(s)" in page and "This person was erased on" in page
    assert "Erase person…" not in page


def staff_rep():
    """A rep someone let into the admin: may change leads, still not erase them."""
    user = rep(username="staff-rep")
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    return user


@pytest.mark.parametrize("make_user", [staff_rep, lambda: marketer(username="mk")], ids=["rep", "marketer"])
def test_reps_and_marketers_get_403_on_export_and_erase(client, person, make_user):
    lead, _ = person
    client.force_login(make_user())

    assert client.get(export_url(lead)).status_code == 403
    assert client.get(erase_url(lead)).status_code == 403
    assert client.post(erase_url(lead), {"confirm": "on"}).status_code == 403

    lead.refresh_from_db()
    assert lead.erased_at is None and lead.email == ADDRESS


def test_a_rep_without_admin_access_is_sent_to_the_admin_login(client, rep_user, person):
    lead, _ = person
    client.force_login(rep_user)

    response = client.post(erase_url(lead), {"confirm": "on"})

    assert response.status_code == 302 and reverse("admin:login") in response["Location"]
    assert Lead.objects.get(pk=lead.pk).erased_at is None


def test_erasing_needs_the_forms_csrf_token(manager_user, person):
    lead, _ = person
    client = Client(enforce_csrf_checks=True)
    client.force_login(manager_user)

    forged = client.post(erase_url(lead), {"confirm": "on"})
    assert forged.status_code == 403
    assert Lead.objects.get(pk=lead.pk).erased_at is None

    token = client.get(erase_url(lead)).context["csrf_token"]
    response = client.post(erase_url(lead), {"confirm": "on", "csrfmiddlewaretoken": str(token)})
    assert response.status_code == 302
    assert Lead.objects.get(pk=lead.pk).erased_at is not None


def test_a_late_provider_event_about_an_erased_person_keeps_no_personal_data(db, manager_user):
    lead = LeadFactory(email="gone@example.org")
    privacy.person_erase(lead=lead, by=manager_user)
    event = event_record(IncomingEvent(provider="postmark", kind="opened", occurred_at=timezone.now(),
                                       message_id="<old@crm.test>", recipient="gone@example.org",
                                       user_agent="Mozilla/5.0 (Windows) Chrome/130"))
    assert event.recipient == "" and event.user_agent == "" and event.lead is None


def test_a_late_event_after_erasing_an_unsubscribed_person_keeps_no_personal_data(db, manager_user):
    lead = LeadFactory(email="left@example.org")
    services.suppression_add(email=lead.email, reason=Suppression.Reason.UNSUBSCRIBED)
    privacy.person_erase(lead=lead, by=manager_user)
    event = event_record(IncomingEvent(provider="postmark", kind="replied", occurred_at=timezone.now(),
                                       message_id="<gone@crm.test>", recipient="left@example.org",
                                       description="Please stop"))
    assert event.recipient == "" and event.description == ""


def test_the_event_log_keeps_what_happened_to_an_erased_person_but_none_of_its_words(person, manager_user):
    from core.models import DomainEvent

    lead, old = person
    ids = sorted(ids_of(lead, old))
    types_before = list(DomainEvent.objects.filter(lead_id__in=ids).order_by("id").values_list("type", flat=True))
    assert DomainEvent.objects.filter(lead_id__in=ids).exclude(payload={}).exists()

    privacy.person_export_by(lead=lead, by=manager_user)
    privacy.person_erase(lead=lead, by=manager_user)

    after = list(DomainEvent.objects.filter(lead_id__in=ids).order_by("id").values_list("type", "lead_id", "actor_user_id", "payload"))
    assert [row[0] for row in after[: len(types_before)]] == types_before
    assert after[len(types_before):] == [
        *[("person.exported", pk, manager_user.pk, {}) for pk in ids],
        *[("person.erased", pk, manager_user.pk, {}) for pk in ids],
    ]
    assert all(payload == {} for *_, payload in after)


def test_the_persons_tags_are_in_the_export_and_go_when_they_are_erased(manager_user):
    import time_machine

    from leads.models import LeadTag
    from leads.tags import lead_tag_add

    moment = datetime(2026, 11, 3, 10, tzinfo=timezone.get_current_timezone())
    with time_machine.travel(moment, tick=False):
        lead = LeadFactory(email="ada@example.org")
        lead_tag_add(lead=lead, name="Difficult", by=manager_user)

        (tag,) = json.loads(json.dumps(privacy.person_export(lead=lead)))["leads"][str(lead.pk)]["tags"]
        assert (tag["name"], tag["added_by"]) == ("Difficult", "manager")
        assert datetime.fromisoformat(tag["added_at"]) == moment
        result = privacy.person_erase(lead=lead, by=manager_user)

    assert result.deleted["tags"] == 1 and not LeadTag.objects.filter(lead=lead).exists()
