"""Marketers run a step's A/B test in the admin: add variants, read the results, pick the winner."""

import pytest
import time_machine
from django.urls import reverse

from nurturing.models import Step, StepVariant
from nurturing.variants import variant_save
from tests.factories import sequence_with_steps
from tests.nurturing.dispatching import MONDAY_10_UTC

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def monday():
    with time_machine.travel(MONDAY_10_UTC, tick=False):
        yield


@pytest.fixture
def step():
    return sequence_with_steps({"subject_template": "Your guide"}, name="Guide follow-up").steps.get()


@pytest.fixture
def tested(step, marketer_user):
    variant_save(variant=StepVariant(step=step, subject_template="<b>Bold</b> {{ first_name|default:'you' }}"),
                 by=marketer_user)
    return step


def page_url(step):
    return reverse("admin:nurturing_step_test", args=[step.pk])


def test_a_marketer_reads_the_test_with_each_variant_and_the_verdict(client, marketer_user, tested):
    client.force_login(marketer_user)

    response = client.get(page_url(tested))

    assert response.status_code == 200
    page = response.content.decode()
    assert "Too early to tell: each variant needs at least 100 emails sent (A: 0, B: 0)." in page
    assert "&lt;b&gt;Bold&lt;/b&gt;" in page and "<b>Bold</b>" not in page  # what marketers typed is escaped
    assert 'value="Pick B as winner"' in page and "csrfmiddlewaretoken" in page
    assert "50%" in page


def test_a_step_without_a_test_says_so_and_offers_to_start_one(client, marketer_user, step):
    client.force_login(marketer_user)

    page = client.get(page_url(step)).content.decode()

    assert "This step runs no A/B test" in page
    assert f"{reverse('admin:nurturing_stepvariant_add')}?step={step.pk}" in page


def test_a_rep_cannot_read_the_test_nor_pick_a_winner(client, rep_user, tested):
    client.force_login(rep_user)
    b = StepVariant.objects.get(step=tested, label="B")
    assert client.get(page_url(tested))["Location"].startswith(reverse("admin:login"))  # no admin for reps
    # Even let into the admin, a rep has no permission on variants.
    type(rep_user).objects.filter(pk=rep_user.pk).update(is_staff=True)

    assert client.get(page_url(tested)).status_code == 403
    assert client.post(page_url(tested), {"winner": b.pk}).status_code == 403
    assert client.get(reverse("admin:nurturing_stepvariant_add")).status_code == 403
    tested.refresh_from_db()
    assert tested.winner is None


def test_a_marketer_picks_the_winner_from_the_test_page(client, marketer_user, tested):
    client.force_login(marketer_user)
    b = StepVariant.objects.get(step=tested, label="B")

    response = client.post(page_url(tested), {"winner": b.pk})

    assert response.status_code == 302 and response["Location"] == page_url(tested)
    tested.refresh_from_db()
    assert tested.winner == b
    page = client.get(page_url(tested)).content.decode()
    assert "Winner: variant B." in page and 'value="Pick B as winner"' not in page


def test_a_variant_of_another_step_cannot_be_picked_here(client, marketer_user, tested):
    client.force_login(marketer_user)
    other = sequence_with_steps(name="Other").steps.get()
    variant_save(variant=StepVariant(step=other, subject_template="Other B"), by=marketer_user)

    response = client.post(page_url(tested), {"winner": StepVariant.objects.get(step=other, label="B").pk})

    assert response.status_code == 404
    assert Step.objects.filter(winner__isnull=False).count() == 0


def variant_form(step, **fields):
    return {"step": step.pk, "subject_template": "", "text_template": "", "html_template": "", "weight": 1,
            "is_active": "on", **fields}


def test_a_marketer_adds_a_variant_and_the_step_s_email_becomes_a(client, marketer_user, step):
    client.force_login(marketer_user)

    response = client.post(reverse("admin:nurturing_stepvariant_add"),
                           variant_form(step, subject_template="A question", weight=3))

    assert response.status_code == 302 and response["Location"] == page_url(step)
    assert [(v.label, v.subject_template, v.weight) for v in StepVariant.objects.filter(step=step)] == [
        ("A", "", 1), ("B", "A question", 3)]


def test_a_variant_with_an_unknown_merge_field_is_refused_by_the_field(client, marketer_user, step):
    client.force_login(marketer_user)

    response = client.post(reverse("admin:nurturing_stepvariant_add"),
                           variant_form(step, subject_template="Hi {{ passwrod }}"))

    assert response.status_code == 200
    [error] = response.context["adminform"].form.errors["subject_template"]
    assert error.startswith("subject: unknown merge field “passwrod” on line 1.") and error in response.content.decode()
    assert not StepVariant.objects.exists()


def test_a_marketer_edits_a_variant_s_weight(client, marketer_user, tested):
    client.force_login(marketer_user)
    a = StepVariant.objects.get(step=tested, label="A")

    response = client.post(reverse("admin:nurturing_stepvariant_change", args=[a.pk]), variant_form(tested, weight=4))

    assert response.status_code == 302
    a.refresh_from_db()
    assert a.weight == 4


def test_the_sequence_page_links_each_email_step_to_its_test(client, marketer_user, step):
    client.force_login(marketer_user)

    page = client.get(reverse("admin:nurturing_sequence_change", args=[step.sequence_id])).content.decode()

    assert page_url(step) in page and "A/B test of step 1" in page


def test_a_marketer_previews_a_variant_and_sends_a_test_of_it(client, marketer_user, tested, mailbox):
    from tests.factories import LeadFactory

    marketer_user.email = "marketer@example.com"
    marketer_user.save()
    client.force_login(marketer_user)
    lead = LeadFactory(first_name="Ada")
    b = StepVariant.objects.get(step=tested, label="B")
    preview = reverse("admin:nurturing_step_preview", args=[tested.pk])

    page = client.get(preview, {"lead": lead.pk, "variant": b.pk}).content.decode()
    response = client.post(preview, {"lead": lead.pk, "variant": b.pk})

    assert "&lt;b&gt;Bold&lt;/b&gt; Ada" in page and "variant B" in page
    assert response["Location"].endswith(f"?lead={lead.pk}&variant={b.pk}")
    [message] = mailbox
    assert message.subject == "[Test] <b>Bold</b> Ada"
    assert client.get(preview, {"lead": lead.pk}).context["rendered"].subject == "Your guide"


def test_the_deliveries_list_names_each_email_s_variant(client, marketer_user, tested):
    from nurturing import services
    from nurturing.models import Delivery
    from tests.factories import LeadFactory
    from tests.nurturing.dispatching import Connection, run_once

    services.sequence_activate(sequence=tested.sequence, by=marketer_user)
    for _ in range(3):
        services.enrollment_create(lead=LeadFactory(), sequence=tested.sequence)
    run_once(connection=Connection())
    labels = sorted(Delivery.objects.values_list("variant__label", flat=True))
    client.force_login(marketer_user)

    response = client.get(reverse("admin:nurturing_delivery_changelist"))

    cells = response.content.decode().split('class="field-variant_label">')[1:]
    assert sorted(cell.split("<")[0] for cell in cells) == labels and len(labels) == 3 and None not in labels


def test_the_sequence_report_links_each_email_step_to_its_test(client, marketer_user, step):
    client.force_login(marketer_user)

    page = client.get(reverse("admin:nurturing_sequence_report", args=[step.sequence_id])).content.decode()

    assert f'<a href="{page_url(step)}">A/B test by variant</a>' in page
