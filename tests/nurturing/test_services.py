"""Sequences and templates: what is refused at save, and what a preview shows."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError

from nurturing import services
from nurturing.models import Delivery, Enrollment, Sequence, Step
from nurturing.rendering import CompiledStep, TemplateProblem, check_template, lead_context
from tests.factories import CompanyFactory, LeadFactory, sequence_with_steps

pytestmark = pytest.mark.django_db


def test_a_syntax_error_is_reported_with_its_line():
    with pytest.raises(TemplateProblem, match="line 3"):
        check_template("Hi {{ first_name }},\n\nSee {% if %} you", field="body")


def test_an_unknown_merge_field_is_reported_with_its_line():
    with pytest.raises(TemplateProblem) as exc:
        check_template("Hello {{ first_name }}\nYour plan: {{ company.name }}\n{{ secret_key }}", field="body")
    assert "“secret_key”" in str(exc.value) and "line 3" in str(exc.value)


@pytest.mark.parametrize(("source", "says"), [
    ("Hi {{ company.nmae }}", "unknown merge field “company.nmae” on line 1. Did you mean “name”? company has: name"),
    ("See {{ links.pricing }}", "unknown merge field “links.pricing” on line 1. links has: book_demo, unsubscribe."),
    ("Hi {{ frist_name }}", "unknown merge field “frist_name” on line 1. Did you mean “first_name”?"),
    ("Your plan: {{ lead.plan }}", "unknown merge field “lead.plan”"),
    ("{% if owner.mail %}x{% endif %}", "unknown merge field “owner.mail”"),
    ("{{ first_name|default:company.title }}", "unknown merge field “company.title”"),
    ("Hi {{ first_name.upper }}", "“first_name” is text: “first_name.upper” on line 1 reads nothing"),
    ("{{ company.name.0 }}", "“company.name” is text: “company.name.0” on line 1 reads nothing"),
])
def test_attribute_typos_and_lookups_into_text_are_refused_with_what_to_write(source, says):
    with pytest.raises(TemplateProblem) as exc:
        check_template(source)
    assert says in str(exc.value)


def test_every_merge_field_the_check_knows_is_in_the_context_and_nothing_else():
    from nurturing.rendering import MERGE_ATTRIBUTES, MERGE_FIELDS

    context = lead_context(LeadFactory())
    assert set(context) == set(MERGE_FIELDS)
    assert {name: tuple(value) for name, value in context.items() if isinstance(value, dict)} == MERGE_ATTRIBUTES
    # A loop's own names are not merge fields: their attributes are not checked.
    check_template("{% with c=company %}{{ c.anything }}{% endwith %}")


@pytest.mark.parametrize(
    "source",
    ["{% for x in leads %}{{ x }}{% endfor %}", "{% if password %}x{% endif %}", "{{ first_name|default:settings }}"],
)
def test_unknown_names_in_tags_and_filters_are_caught_too(source):
    with pytest.raises(TemplateProblem, match="unknown merge field"):
        check_template(source)


def test_known_fields_loops_and_defaults_pass():
    check_template(
        "{% with name=first_name|default:'there' %}Hi {{ name }}{% endwith %} "
        "{% if company.name %}at {{ company.name }}{% endif %} {{ links.book_demo }}"
    )


@pytest.mark.parametrize("source", ['{% load humanize %}', '{% include "admin/base.html" %}', '{% extends "x.html" %}'])
def test_templates_cannot_load_libraries_or_read_files(source):
    with pytest.raises(Exception):  # noqa: B017 - any refusal will do, nothing may render
        check_template(source)
        CompiledStep(Step(subject_template="s", text_template=source)).render({})


def test_html_bodies_escape_what_a_lead_typed_and_subjects_stay_one_line():
    lead = LeadFactory(first_name="<script>alert(1)</script>", company=CompanyFactory(name="Evil\r\nBcc: x@y"))
    step = Step(subject_template="Hi {{ company.name }}", text_template="Hi {{ first_name }}", html_template="<p>Hi {{ first_name }}</p>")
    rendered = CompiledStep(step).render(lead_context(lead))
    assert "<script>" not in rendered.html and "&lt;script&gt;" in rendered.html
    assert "\n" not in rendered.subject and "\r" not in rendered.subject
    assert rendered.text == "Hi <script>alert(1)</script>"  # plain text is not HTML


def test_activating_needs_usable_steps_and_changes_nothing_otherwise():
    empty = Sequence.objects.create(name="Empty")
    with pytest.raises(ValidationError, match="at least one active step"):
        services.sequence_activate(sequence=empty)

    broken = sequence_with_steps({"subject_template": ""}, {"text_template": "{{ nope }}"}, status="draft")
    with pytest.raises(ValidationError) as exc:
        services.sequence_activate(sequence=broken)
    messages = " ".join(exc.value.messages)
    assert "Step 1: An email step needs a subject." in messages
    assert "Step 2:" in messages and "nope" in messages
    broken.refresh_from_db()
    assert broken.status == Sequence.Status.DRAFT


def test_a_negative_delay_and_a_customer_stage_action_are_refused():
    step = Step(subject_template="s", text_template="t", delay=timedelta(days=-1), stage_action="customer")
    with pytest.raises(ValidationError) as exc:
        services.step_check(step)
    assert {"delay", "stage_action"} <= set(exc.value.message_dict)


def test_the_sender_rule_holds_outside_the_admin_too(marketer_user, manager_user):
    with pytest.raises(ValidationError) as exc:
        services.sequence_save(sequence=Sequence(name="Spoofed", sender=manager_user), by=marketer_user)
    assert "You can choose only yourself as the sender" in exc.value.message_dict["sender"][0]
    assert not Sequence.objects.exists()

    sequence = services.sequence_save(sequence=Sequence(name="Mine", sender=marketer_user), by=marketer_user)
    assert sequence.created_by == marketer_user


# --- Sequences and steps: their services hold the rules ---------------------------------


def test_archiving_a_sequence_takes_its_leads_out_and_it_cannot_be_started_again():
    from nurturing.models import Delivery, Enrollment

    sequence = sequence_with_steps()
    enrollment = services.enrollment_create(lead=LeadFactory(), sequence=sequence)

    assert services.sequence_archive(sequence=sequence) == 1

    enrollment.refresh_from_db()
    assert (enrollment.status, enrollment.exit_reason) == (Enrollment.Status.EXITED, "The sequence was archived")
    assert list(enrollment.deliveries.values_list("status", "reason")) == [
        (Delivery.Status.SKIPPED, "Exited: the sequence was archived")
    ]
    for change in (services.sequence_activate, services.sequence_pause):
        with pytest.raises(ValidationError) as refused:
            change(sequence=sequence)
        assert refused.value.message_dict["status"][0].startswith("The sequence is archived")
    assert Sequence.objects.get(pk=sequence.pk).status == Sequence.Status.ARCHIVED


def test_a_step_is_saved_only_when_usable_and_deleted_only_when_never_used():
    sequence = sequence_with_steps({}, {})
    first, second = sequence.steps.order_by("position")
    first.subject_template = "Hi {% debug %}"
    with pytest.raises(ValidationError) as refused:
        services.step_save(step=first)
    assert "the tag “{% debug %}” on line 1 cannot be used" in refused.value.message_dict["subject_template"][0]
    assert Step.objects.get(pk=first.pk).subject_template != "Hi {% debug %}"

    services.enrollment_create(lead=LeadFactory(), sequence=sequence)  # schedules the first step
    with pytest.raises(ValidationError, match="This step has been used: switch it off instead"):
        services.step_delete(step=first)
    services.step_delete(step=second)
    assert list(sequence.steps.values_list("pk", flat=True)) == [first.pk]


def test_the_fields_a_template_writes_out_and_which_already_say_what_to_write_when_empty():
    from nurturing.rendering import FieldUse, merge_field_uses

    source = ("{{ first_name|default:'there' }} {{ last_name }}\n"
              "{% if company.name %}{{ company.name }}{% else %}{{ company.name }}{{ owner.email }}{% endif %}\n"
              "{% with c=company %}{{ c.domain }}{% endwith %}{% for k, v in lead.items %}{{ v }}{% endfor %}"
              "{% if campaign.name %}x{% endif %}")
    assert merge_field_uses(source) == [
        FieldUse("first_name", 1, True), FieldUse("last_name", 1, False),
        FieldUse("company.name", 2, True),  # inside {% if company.name %}
        FieldUse("company.name", 2, False), FieldUse("owner.email", 2, False),  # {% else %}: known empty there
    ]
    assert merge_field_uses("{% if %}") == []  # a template that does not compile writes nothing out


def test_a_sequence_says_what_happens_to_a_lead_already_in_another_one():
    from nurturing.services import enrollment_create, enrollment_plan
    from tests.factories import sequence_with_steps

    welcome = sequence_with_steps(name="Welcome")
    lead = LeadFactory()
    first = enrollment_create(lead=lead, sequence=welcome)

    skipping = sequence_with_steps(name="Webinar", in_other_sequence="skip")
    assert enrollment_plan(leads=[lead], sequence=skipping).skipped == {
        "the lead is already in “Welcome” (the sequence skips such leads)": [lead]}
    with pytest.raises(ValidationError, match="already in “Welcome”"):
        enrollment_create(lead=lead, sequence=skipping)

    replacing = sequence_with_steps(name="Pricing", in_other_sequence="replace")
    assert enrollment_plan(leads=[lead], sequence=replacing).replace == [(lead, ["Welcome"])]
    enrollment_create(lead=lead, sequence=replacing)
    first.refresh_from_db()
    assert first.status == Enrollment.Status.EXITED and first.exit_reason == "replaced by “Pricing”"
    assert not first.deliveries.filter(status=Delivery.Status.SCHEDULED).exists()  # nothing more from Welcome

    allowing = sequence_with_steps(name="Newsletter")  # the default: enrolled too, and said so beforehand
    assert enrollment_plan(leads=[lead], sequence=allowing).also_in == [(lead, ["Pricing"])]
    enrollment_create(lead=lead, sequence=allowing)
    assert set(Enrollment.objects.filter(lead=lead, status="active").values_list("sequence__name", flat=True)) == {
        "Pricing", "Newsletter"}


def test_a_sequence_that_asks_for_consent_enrolls_only_leads_with_consent_recorded():
    from django.utils import timezone

    from nurturing.services import enrollment_create, enrollment_plan
    from tests.factories import sequence_with_steps

    sequence = sequence_with_steps(requires_consent=True)
    without, agreed = LeadFactory(), LeadFactory(consent_given_at=timezone.now(), consent_text="Send me the guide")
    plan = enrollment_plan(leads=[without, agreed], sequence=sequence)
    assert plan.enroll == [agreed]
    assert list(plan.skipped.values()) == [[without]] and "no consent" in next(iter(plan.skipped))
    with pytest.raises(ValidationError, match="no consent to be emailed is recorded"):
        enrollment_create(lead=without, sequence=sequence)


def test_live_sequences_get_their_steps_as_version_1_when_versions_start():
    from importlib import import_module

    from django.apps import apps

    from nurturing.models import SequenceVersion
    from nurturing.services import sequence_snapshot

    live = sequence_with_steps({}, {"subject_template": "Second"}, name="Live")
    sequence_with_steps(name="Draft", status="draft")
    import_module("nurturing.migrations.0011_sequence_versions").first_versions(apps, None)

    version = SequenceVersion.objects.get()
    assert (version.sequence, version.number) == (live, 1)
    assert version.steps == sequence_snapshot(live)  # the same shape the services keep
    assert [step["subject_template"] for step in version.steps][1] == "Second"
