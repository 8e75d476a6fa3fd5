"""Marketers run a campaign in the admin: build, preview, test, activate, enroll."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from nurturing import services
from nurturing.claim import deliveries_claim
from nurturing.dispatch import deliveries_send
from nurturing.models import Enrollment, Sequence, Suppression, email_hash
from tests.factories import LeadFactory, sequence_with_steps

pytestmark = pytest.mark.django_db


@pytest.fixture
def marketer_client(client, marketer_user):
    marketer_user.email = "marketer@example.com"
    marketer_user.save()
    client.force_login(marketer_user)
    return client


def step_formset(**step):
    data = {
        "name": "Guide follow-up", "goal": "", "goal_stage": "sql", "daily_cap_per_sender": 200,
        "in_other_sequence": "allow", "triggers-TOTAL_FORMS": 0, "triggers-INITIAL_FORMS": 0,
        "steps-TOTAL_FORMS": 1, "steps-INITIAL_FORMS": 0,
        "steps-0-position": 1, "steps-0-kind": "email", "steps-0-delay": "1 00:00:00", "steps-0-send_days": "01234",
        "steps-0-window_start": "09:00", "steps-0-window_end": "17:00", "steps-0-is_active": "on", "steps-0-condition": "always",
        "steps-0-subject_template": "Tips for {{ first_name|default:'you' }}", "steps-0-text_template": "Hello",
    }
    data.update({f"steps-0-{k}": v for k, v in step.items()})
    return data


def test_a_marketer_builds_a_sequence_with_steps(marketer_client):
    response = marketer_client.post(reverse("admin:nurturing_sequence_add"), step_formset())
    assert response.status_code == 302
    sequence = Sequence.objects.get()
    assert sequence.status == Sequence.Status.DRAFT and sequence.steps.count() == 1


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ({"text_template": "Hi\n{% if %}"}, "line 2"),
        ({"text_template": "Hi {{ password }} {{ lead.salary }}"}, "unknown merge field “password”"),
        ({"text_template": "Hi {{ company.nmae }}"}, "unknown merge field “company.nmae” on line 1. Did you mean “name”?"),
        ({"subject_template": ""}, "needs a subject"),
        ({"delay": "-1 00:00:00"}, "cannot be negative"),
        ({"text_template": "Hi\n{% debug %}"}, "the tag “{% debug %}” on line 2 cannot be used in emails"),
        ({"text_template": "{% lorem 200000 w %}"}, "the tag “{% lorem %}” on line 1 cannot be used in emails"),
        ({"html_template": '<p>{{ first_name|ljust:"50000000" }}</p>'}, "pads to at most 200 characters, not 50000000"),
        (
            {"text_template": '{% for a in "xxxxxxxxxx" %}{% for b in "xxxxxxxxxx" %}spam{% endfor %}{% endfor %}'},
            "the loop on line 1 goes over a fixed text or number",
        ),
    ],
    ids=["syntax", "unknown-field", "attribute-typo", "no-subject", "negative-delay", "debug", "lorem", "wide-padding", "loop-over-text"],
)
def test_a_bad_step_is_refused_at_save_and_nothing_is_written(marketer_client, step, message):
    response = marketer_client.post(reverse("admin:nurturing_sequence_add"), step_formset(**step))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Sequence.objects.exists()


# --- Who a sequence's emails come from -------------------------------------------------------


def sender_form(sender, **fields):
    """The sequence change form as posted, with no steps."""
    return {
        "name": "Guide follow-up", "goal": "", "goal_stage": "sql", "daily_cap_per_sender": 200,
        "in_other_sequence": "allow", "sender": sender.pk if sender else "", "steps-TOTAL_FORMS": 0, "steps-INITIAL_FORMS": 0,
        "triggers-TOTAL_FORMS": 0, "triggers-INITIAL_FORMS": 0, **fields,
    }


def test_a_marketer_cannot_make_someone_else_the_sender_and_the_form_says_why(marketer_client, manager_user):
    response = marketer_client.post(reverse("admin:nurturing_sequence_add"), sender_form(manager_user))

    assert response.status_code == 200
    [error] = response.context["adminform"].form.errors["sender"]
    assert error.startswith("You can choose only yourself as the sender: sending as ")
    assert "needs the permission to send as others" in error and error in response.content.decode()
    assert not Sequence.objects.exists()


def test_a_marketer_cannot_switch_an_existing_sequence_to_another_sender(marketer_client, marketer_user, manager_user):
    sequence = Sequence.objects.create(name="Guide follow-up", sender=marketer_user)

    response = marketer_client.post(reverse("admin:nurturing_sequence_change", args=[sequence.pk]), sender_form(manager_user))

    assert "sender" in response.context["adminform"].form.errors
    sequence.refresh_from_db()
    assert sequence.sender == marketer_user


def test_a_marketer_may_send_as_themselves(marketer_client, marketer_user):
    response = marketer_client.post(reverse("admin:nurturing_sequence_add"), sender_form(marketer_user))

    assert response.status_code == 302
    sequence = Sequence.objects.get()
    assert (sequence.sender, sequence.created_by) == (marketer_user, marketer_user)


def test_a_marketer_may_edit_a_sequence_a_manager_set_to_send_as_someone_else(marketer_client, manager_user):
    sequence = Sequence.objects.create(name="Guide follow-up", sender=manager_user)

    response = marketer_client.post(
        reverse("admin:nurturing_sequence_change", args=[sequence.pk]), sender_form(manager_user, name="Guide follow-up (v2)")
    )

    assert response.status_code == 302
    sequence.refresh_from_db()
    assert (sequence.name, sequence.sender) == ("Guide follow-up (v2)", manager_user)


def test_a_manager_may_make_a_colleague_the_sender(client, manager_user, rep_user):
    client.force_login(manager_user)

    response = client.post(reverse("admin:nurturing_sequence_add"), sender_form(rep_user))

    assert response.status_code == 302
    assert Sequence.objects.get().sender == rep_user


@pytest.mark.parametrize(
    ("change", "message"),
    [({"is_active": False}, "is deactivated: choose an active user"), ({"email": ""}, "has no email address")],
    ids=["deactivated", "no-address"],
)
def test_a_manager_cannot_make_a_user_who_cannot_send_the_sender(client, manager_user, rep_user, change, message):
    client.force_login(manager_user)
    type(rep_user).objects.filter(pk=rep_user.pk).update(**change)

    response = client.post(reverse("admin:nurturing_sequence_add"), sender_form(rep_user))

    [error] = response.context["adminform"].form.errors["sender"]
    assert message in error
    assert not Sequence.objects.exists()


def test_activating_a_sequence_without_steps_says_why_and_leaves_it_draft(marketer_client):
    sequence = Sequence.objects.create(name="Empty")
    marketer_client.post(
        reverse("admin:nurturing_sequence_changelist"), {"action": "activate", ACTION_CHECKBOX_NAME: [sequence.pk]}
    )
    sequence.refresh_from_db()
    assert sequence.status == Sequence.Status.DRAFT
    page = marketer_client.get(reverse("admin:nurturing_sequence_changelist")).content.decode()
    assert "at least one active step" in page


def test_a_marketer_archives_a_sequence_and_its_leads_leave_it(marketer_client):
    from nurturing import services
    from nurturing.models import Enrollment

    sequence = sequence_with_steps(name="Old webinar follow-up")
    enrollment = services.enrollment_create(lead=LeadFactory(), sequence=sequence)

    response = marketer_client.post(
        reverse("admin:nurturing_sequence_changelist"), {"action": "archive", ACTION_CHECKBOX_NAME: [sequence.pk]}, follow=True
    )

    assert "Old webinar follow-up is archived; 1 lead(s) left it." in response.content.decode()
    sequence.refresh_from_db()
    enrollment.refresh_from_db()
    assert sequence.status == Sequence.Status.ARCHIVED and enrollment.status == Enrollment.Status.EXITED


def test_preview_renders_a_step_for_a_chosen_lead_and_a_test_goes_to_me(marketer_client, mailbox):
    sequence = sequence_with_steps({"html_template": "<p>Hi {{ first_name }}</p>"})
    lead = LeadFactory(first_name="Grace")
    url = reverse("admin:nurturing_step_preview", args=[sequence.steps.get().pk])

    page = marketer_client.get(url, {"lead": lead.pk})
    assert page.context["rendered"].subject == "Step 1 for Grace"

    marketer_client.post(url, {"lead": lead.pk})
    assert len(mailbox) == 1
    assert mailbox[0].to == ["marketer@example.com"] and mailbox[0].subject == "[Test] Step 1 for Grace"


def test_preview_finds_the_lead_by_name_or_email_and_flags_each_merge_field_that_comes_out_empty(
        marketer_client, settings):
    from nurturing.services import enrollment_create
    from tests.factories import CompanyFactory

    settings.CRM_BOOKING_URL = ""
    sequence = sequence_with_steps({
        "subject_template": "{{ company.name }} and you",
        "text_template": "Hi {{ first_name|default:'there' }},\n{% if company.industry %}{{ company.industry }}{% endif %}"
                         "\nBook: {{ links.book_demo }}\n{{ owner.full_name }}",
    })
    step = sequence.steps.get()
    grace = LeadFactory(first_name="Grace", last_name="Hopper", email="grace@navy.test", company=None, owner=None)
    ada = LeadFactory(first_name="Ada", email="ada@example.test", company=CompanyFactory(name="Analytical"))
    for lead in (grace, ada):
        enrollment_create(lead=lead, sequence=sequence)
    url = reverse("admin:nurturing_step_preview", args=[step.pk])

    page = marketer_client.get(url, {"lead": "hopper"})
    assert page.context_data["lead"] == grace
    here = {field.path: field.lines for field in page.context_data["empty_here"]}
    # Grace has no company and no owner; the first name has a default and the industry sits inside {% if %}.
    assert here == {"company.name": ["subject line 1"], "links.book_demo": ["text line 3"],
                    "owner.full_name": ["text line 4"]}
    across = {field.path: (field.leads, field.of) for field in page.context_data["empty_across"]}
    assert across["company.name"] == (1, 2) and across["links.book_demo"] == (2, 2)
    html = page.content.decode()
    assert "1 of the 2 leads in this sequence would get <code>{{ company.name }}</code> empty (subject line 1)" in html
    assert 'Add a default, e.g. <code>{{ company.name|default:"…" }}</code>' in html

    assert marketer_client.get(url, {"lead": "ada@example"}).context_data["lead"] == ada
    assert "company.name" not in {f.path for f in marketer_client.get(url, {"lead": "ada@example"}).context_data["empty_here"]}
    nobody = marketer_client.get(url, {"lead": "nobody-like-this"})
    assert nobody.context_data["lead"] is None and "No lead matches “nobody-like-this”" in nobody.content.decode()
    assert marketer_client.get(url, {"lead": "<script>x</script>"}).status_code == 200


# Two loops over long texts: written long before the sandbox refused them at save.
NESTED_LOOPS = '{% for a in "' + "x" * 2000 + '" %}{% for b in "' + "x" * 2000 + '" %}{{ body }}{% endfor %}{% endfor %}'


@pytest.mark.parametrize(
    ("body", "limits", "message"),
    [
        ("spam", {"CRM_NURTURE_RENDER_MAX_CHARS": 100_000}, "plain-text body: longer than 100,000 characters once rendered"),
        ("", {"CRM_NURTURE_RENDER_MAX_SECONDS": 0.2}, "plain-text body: rendering took longer than 0.2 seconds"),
    ],
    ids=["too-long", "too-slow"],
)
def test_a_preview_of_a_step_that_renders_past_its_limits_says_so_instead_of_hanging(marketer_client, settings, body, limits, message):
    for name, value in limits.items():
        setattr(settings, name, value)
    sequence = sequence_with_steps({"text_template": NESTED_LOOPS.replace("{{ body }}", body)})
    lead = LeadFactory()

    page = marketer_client.get(reverse("admin:nurturing_step_preview", args=[sequence.steps.get().pk]), {"lead": lead.pk})

    assert page.context["rendered"] is None
    assert message in page.content.decode()


def test_a_test_send_of_a_step_that_renders_past_its_limits_is_refused_with_the_reason(marketer_client, settings, mailbox):
    settings.CRM_NURTURE_RENDER_MAX_CHARS = 100_000
    sequence = sequence_with_steps({"text_template": NESTED_LOOPS.replace("{{ body }}", "spam")})
    url = reverse("admin:nurturing_step_preview", args=[sequence.steps.get().pk])

    response = marketer_client.post(url, {"lead": LeadFactory().pk}, follow=True)

    assert mailbox == []
    assert any("Not sent: plain-text body: longer than 100,000 characters" in str(m) for m in response.context["messages"])


def test_a_test_send_to_a_suppressed_address_is_refused(marketer_client, mailbox):
    sequence = sequence_with_steps()
    lead = LeadFactory()
    Suppression.objects.create(email="marketer@example.com")
    marketer_client.post(reverse("admin:nurturing_step_preview", args=[sequence.steps.get().pk]), {"lead": lead.pk})
    assert mailbox == []


def test_enrolling_selected_leads_from_the_lead_list(client, manager_user):
    client.force_login(manager_user)
    sequence = sequence_with_steps()
    good, suppressed = LeadFactory(), LeadFactory()
    Suppression.objects.create(email=suppressed.email)

    response = client.post(
        reverse("admin:leads_lead_changelist"),
        {"action": "enroll_in_sequence", ACTION_CHECKBOX_NAME: [good.pk, suppressed.pk], "index": 0, "apply": "1", "sequence": sequence.pk},
    )

    assert response.status_code == 302
    assert list(Enrollment.objects.values_list("lead_id", flat=True)) == [good.pk]
    messages = [str(m) for m in client.get(reverse("admin:leads_lead_changelist")).context["messages"]]
    assert any("1 lead(s) enrolled" in m for m in messages)
    assert any("suppressed" in m for m in messages)


def test_enrolling_shows_who_would_be_enrolled_and_who_skipped_and_why_before_writing(client, marketer_user):
    from leads.pipeline import LeadStatus
    from tests.factories import lead_at

    client.force_login(marketer_user)
    sequence = sequence_with_steps(name="Pricing follow-up", goal_stage="sql")
    other = sequence_with_steps(name="Welcome")
    fresh, busy, suppressed = LeadFactory(first_name="Fresh"), LeadFactory(first_name="Busy"), LeadFactory()
    qualified = lead_at(LeadStatus.SQL)
    services.enrollment_create(lead=busy, sequence=other)
    Suppression.objects.create(email=suppressed.email)
    selected = {"action": "enroll_in_sequence", ACTION_CHECKBOX_NAME: [fresh.pk, busy.pk, suppressed.pk, qualified.pk],
                "index": 0}
    url = reverse("admin:leads_lead_changelist")

    assert "Show who will be enrolled" in client.post(url, selected).content.decode()
    preview = client.post(url, {**selected, "preview": "1", "sequence": sequence.pk})
    plan = preview.context_data["plan"]
    assert plan.enroll == [fresh] and plan.also_in == [(busy, ["Welcome"])] and plan.enrolled_count == 2
    assert {why: leads for why, leads in plan.skipped.items()} == {
        "the address is suppressed (unsubscribed, bounced or blocked)": [suppressed],
        "the lead is already SQL, the sequence's goal": [qualified],
    }
    html = preview.content.decode()
    assert "would be enrolled in “Pricing follow-up”" in html and 'value="Enroll 2 leads"' in html
    assert Enrollment.objects.filter(sequence=sequence).count() == 0  # nothing written by the preview

    response = client.post(url, {**selected, "apply": "1", "sequence": sequence.pk})
    assert response.status_code == 302
    assert set(Enrollment.objects.filter(sequence=sequence).values_list("lead_id", flat=True)) == {fresh.pk, busy.pk}


def test_the_lead_page_shows_its_deliveries_and_the_sequence_its_counts(client, manager_user, mailbox):
    client.force_login(manager_user)
    sequence = sequence_with_steps({}, {})
    lead = LeadFactory()
    services.enrollment_create(lead=lead, sequence=sequence)
    token, ids = deliveries_claim(limit=10)
    deliveries_send(ids=ids, token=token)

    page = client.get(reverse("admin:leads_lead_change", args=[lead.pk])).content.decode()
    assert "Welcome · step 1" in page and "Sent" in page and "Scheduled" in page

    counts = client.get(reverse("admin:nurturing_sequence_change", args=[sequence.pk])).content.decode()
    assert "step-counts" in counts


def test_a_sales_rep_cannot_open_the_sequence_admin(client, rep_user):
    client.force_login(rep_user)
    assert client.get(reverse("admin:nurturing_sequence_changelist")).status_code == 302


def test_adding_a_suppression_without_an_address_is_an_error_by_the_field(marketer_client):
    response = marketer_client.post(reverse("admin:nurturing_suppression_add"), {"email": "  ", "reason": "manual", "source": ""})

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["email"] == ["Enter the address to suppress."]
    assert not Suppression.objects.exists()


def test_adding_an_address_already_suppressed_says_why_and_since_when(marketer_client):
    existing = Suppression.objects.create(email="ann@example.com", reason=Suppression.Reason.BOUNCED)

    response = marketer_client.post(
        reverse("admin:nurturing_suppression_add"), {"email": " Ann@Example.com ", "reason": "manual", "source": "call"}
    )

    assert response.status_code == 200
    [error] = response.context["adminform"].form.errors["email"]
    assert error.startswith("This address is already suppressed (Hard bounce, since ")
    assert error in response.content.decode()
    assert list(Suppression.objects.values_list("pk", "reason", "source")) == [(existing.pk, "bounced", "")]


def test_changing_a_suppression_to_an_address_already_suppressed_is_an_error_by_the_field(client, manager_user):
    client.force_login(manager_user)  # marketers may add suppressions, not change them
    Suppression.objects.create(email="ann@example.com", reason=Suppression.Reason.UNSUBSCRIBED)
    other = Suppression.objects.create(email="bob@example.com")

    response = client.post(
        reverse("admin:nurturing_suppression_change", args=[other.pk]), {"email": "ANN@example.com", "reason": "manual", "source": ""}
    )

    assert response.status_code == 200
    [error] = response.context["adminform"].form.errors["email"]
    assert error.startswith("This address is already suppressed (Unsubscribed, since ")
    other.refresh_from_db()
    assert other.email == "bob@example.com"


def test_an_erased_suppression_stays_editable_for_its_reason_and_source(client, manager_user):
    client.force_login(manager_user)  # marketers may add suppressions, not change them
    erased = Suppression.objects.create(email="gone@example.com", reason=Suppression.Reason.ERASED)
    Suppression.objects.filter(pk=erased.pk).update(email="")
    url = reverse("admin:nurturing_suppression_change", args=[erased.pk])

    assert "email" not in client.get(url).context["adminform"].form.fields
    response = client.post(url, {"reason": "complained", "source": "support ticket"})

    assert response.status_code == 302
    erased.refresh_from_db()
    assert (erased.email, erased.reason, erased.source) == ("", "complained", "support ticket")
    assert erased.email_hash == email_hash("gone@example.com")


def test_a_new_address_is_suppressed_from_the_admin(marketer_client):
    response = marketer_client.post(reverse("admin:nurturing_suppression_add"), {"email": " New@Example.com", "reason": "manual", "source": ""})

    assert response.status_code == 302
    assert list(Suppression.objects.values_list("email", "source")) == [("new@example.com", "admin")]


def test_a_change_to_a_live_sequence_is_a_new_version_and_each_email_records_the_one_it_came_from(
        marketer_client, marketer_user, mailbox):
    from nurturing.models import Delivery, SequenceVersion

    sequence = sequence_with_steps({"text_template": "Hello {{ first_name|default:'there' }}.\nSee you."},
                                   status="draft", name="Guide follow-up")
    step = sequence.steps.get()
    step.subject_template = "Draft edit"
    services.step_save(step=step, by=marketer_user)
    assert not SequenceVersion.objects.exists()  # drafts change freely

    services.sequence_activate(sequence=sequence, by=marketer_user)
    services.enrollment_create(lead=LeadFactory(first_name="Ada"), sequence=sequence)
    token, ids = deliveries_claim(limit=10)
    deliveries_send(ids=ids, token=token)
    first = SequenceVersion.objects.get()
    assert first.number == 1 and Delivery.objects.get(status="sent").version == first

    step.text_template = "Hello {{ first_name|default:'there' }}.\nSee you at the webinar."
    services.steps_save(sequence=sequence, steps=[step], by=marketer_user)
    services.steps_save(sequence=sequence, steps=[step], by=marketer_user)  # saved again unchanged: no version
    assert list(sequence.versions.values_list("number", flat=True)) == [2, 1]
    services.enrollment_create(lead=LeadFactory(first_name="Grace"), sequence=sequence)
    token, ids = deliveries_claim(limit=10)
    deliveries_send(ids=ids, token=token)
    assert sorted(Delivery.objects.filter(status="sent").values_list("version__number", flat=True)) == [1, 2]

    page = marketer_client.get(reverse("admin:nurturing_sequence_versions", args=[sequence.pk]))
    html = page.content.decode()
    assert "Version 2" in html and "1 email sent from it" in html
    assert "−     | See you.\n+     | See you at the webinar." in html
    change = marketer_client.get(reverse("admin:nurturing_sequence_change", args=[sequence.pk])).content.decode()
    assert "Version 2 of" in change and reverse("admin:nurturing_sequence_versions", args=[sequence.pk]) in change


def test_a_marketer_sets_a_sequences_triggers_on_its_page(marketer_client):
    from nurturing.models import Trigger

    data = {**step_formset(), "triggers-TOTAL_FORMS": 2, "triggers-0-kind": "objection",
            "triggers-0-objection_category": "price", "triggers-0-is_active": "on",
            "triggers-1-kind": "stage_reached", "triggers-1-is_active": "on"}
    refused = marketer_client.post(reverse("admin:nurturing_sequence_add"), data)
    assert refused.status_code == 200 and "Choose the stage." in refused.content.decode()
    assert not Sequence.objects.exists()

    data["triggers-1-stage"] = "mql"
    assert marketer_client.post(reverse("admin:nurturing_sequence_add"), data).status_code == 302
    assert sorted(Trigger.objects.values_list("kind", "objection_category", "stage")) == [
        ("objection", "price", ""), ("stage_reached", "", "mql")]


def test_a_marketer_makes_a_tag_ahead_of_its_use_and_sets_score_and_tag_triggers(marketer_client):
    from datetime import UTC, datetime

    import time_machine

    from leads.models import Tag
    from nurturing.models import Trigger

    with time_machine.travel(datetime(2026, 11, 3, 10, tzinfo=UTC), tick=False):
        made = marketer_client.post(reverse("admin:leads_tag_add"), {"name": " Spring  fair "})
        assert made.status_code == 302
        again = marketer_client.post(reverse("admin:leads_tag_add"), {"name": "SPRING FAIR"})
        assert again.status_code == 200 and "exists already" in again.content.decode()
        tag = Tag.objects.get()
        assert (tag.name, tag.key) == ("Spring fair", "spring fair")

        data = {**step_formset(), "triggers-TOTAL_FORMS": 2, "triggers-0-kind": "score_crossed",
                "triggers-0-score": "0", "triggers-0-is_active": "on",
                "triggers-1-kind": "tag_added", "triggers-1-tag": tag.pk, "triggers-1-is_active": "on"}
        refused = marketer_client.post(reverse("admin:nurturing_sequence_add"), data)
        assert refused.status_code == 200 and "a whole number above 0" in refused.content.decode()
        data["triggers-0-score"] = "30"
        assert marketer_client.post(reverse("admin:nurturing_sequence_add"), data).status_code == 302
    assert sorted(Trigger.objects.values_list("kind", "score", "tag")) == [("score_crossed", 30, None),
                                                                          ("tag_added", None, tag.pk)]
