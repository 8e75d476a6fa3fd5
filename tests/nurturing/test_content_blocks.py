"""Social proof from the content library: each lead gets the block that fits it, escaped, warned about when none does."""

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from leads.models import Resource
from leads.services import form_submission_record, objection_log, objection_resolve
from nurturing import rendering
from nurturing.claim import deliveries_claim
from nurturing.content import CONTENT_KEY, LibraryBlock, block_html, content_block_for
from nurturing.content_library import content_library
from nurturing.content_services import content_block_save
from nurturing.dispatch import deliveries_send
from nurturing.models import ContentBlock, Delivery
from nurturing.previews import preview_context
from nurturing.rendering import MERGE_FIELDS, TemplateProblem, check_template
from tests.factories import ContentBlockFactory, LeadFactory, PersonaFactory, sequence_with_steps
from tests.nurturing.dispatching import MONDAY_10_UTC, Connection, enroll

SENDING_TIME = MONDAY_10_UTC + timedelta(minutes=5)
JAN = datetime(2026, 1, 1, tzinfo=dt_timezone.utc)


# --- Which block a lead gets (a pure choice) --------------------------------------------------------


def block(pk, *, kind="case_study", personas=(), topics=(), objection="", days=0, is_active=True):
    return LibraryBlock(id=pk, kind=kind, title=f"block {pk}", persona_ids=frozenset(personas),
                        topics=frozenset(topics), objection=objection, created_at=JAN + timedelta(days=days),
                        is_active=is_active)


CFO, CTO = 1, 2
LIBRARY = [
    block(1),  # for anyone
    block(2, topics={"forecasting"}),
    block(3, personas={CFO}),
    block(4, personas={CFO}, topics={"forecasting"}),
    block(5, objection="price"),
]


def chosen(blocks, *, kind="case_study", persona_id=CFO, topic="forecasting", objection="price"):
    found = content_block_for(blocks, kind=kind, persona_id=persona_id, topic=topic, objection=objection)
    return found.id if found else None


def test_the_block_that_answers_the_open_objection_comes_first_then_persona_and_topic_then_persona_then_topic_then_any():
    order = []
    library = list(LIBRARY)
    while library:
        best = chosen(library)
        order.append(best)
        library = [b for b in library if b.id != best]
    assert order == [5, 4, 3, 2, 1]


def test_without_an_objection_asked_for_an_objection_block_counts_as_a_block_for_anyone():
    assert chosen(LIBRARY, objection=None) == 4
    assert chosen([LIBRARY[0], LIBRARY[4]], objection=None) == 5  # the newer of two blocks for anyone


def test_between_equal_blocks_the_newest_wins_and_an_inactive_one_is_never_chosen():
    older, newer = block(1, personas={CFO}, days=1), block(2, personas={CFO}, days=2)
    assert chosen([older, newer]) == 2
    assert chosen([older, block(2, personas={CFO}, days=2, is_active=False)]) == 1


def test_a_block_for_other_personas_or_topics_or_of_another_kind_is_never_chosen():
    library = [block(1, personas={CTO}), block(2, topics={"pipeline"}), block(3, kind="testimonial"),
               block(4, personas={CFO}, topics={"pipeline"})]
    assert chosen(library) is None
    assert chosen(library, kind="testimonial") == 3
    assert chosen(library, persona_id=None, topic="") is None


def test_a_lead_without_persona_or_topic_gets_a_block_for_anyone():
    assert chosen(LIBRARY, persona_id=None, topic="", objection=None) == 5
    assert chosen(LIBRARY[:4], persona_id=None, topic=None, objection=None) == 1


def test_topics_match_whatever_their_case():
    assert chosen([block(1, topics={"forecasting"})], topic=" Forecasting ") == 1


# --- The library as a batch loads it -----------------------------------------------------------------


@pytest.mark.django_db
def test_the_library_loads_the_active_blocks_with_their_personas_and_topics_in_one_query(django_assert_num_queries):
    cfo, cto = PersonaFactory(name="CFO"), PersonaFactory(name="CTO")
    Resource.objects.create(name="Forecast guide", slug="forecast", topic="Forecasting")
    with time_machine.travel(JAN, tick=False):
        both = ContentBlockFactory(personas=[cfo, cto], topics="forecasting")
        ContentBlockFactory(is_active=False)
    with django_assert_num_queries(1):
        library = content_library()
    assert [(b.id, b.persona_ids, b.topics, b.attribution) for b in library] == [
        (both.pk, frozenset({cfo.pk, cto.pk}), frozenset({"forecasting"}), "Ana Ruiz, CFO, Acme")]


# --- In a real delivery --------------------------------------------------------------------------------


def send_batch():
    token, ids = deliveries_claim(limit=100, now=SENDING_TIME)
    connection = Connection()
    with time_machine.travel(SENDING_TIME, tick=False):
        deliveries_send(ids=ids, token=token, now=SENDING_TIME, connection=connection)
    return {message.to[0]: message for message in connection.sent}


def downloaded(lead, resource):
    with time_machine.travel(MONDAY_10_UTC - timedelta(days=1), tick=False):
        form_submission_record(lead=lead, form_name="Guide", resource=resource)


@pytest.mark.django_db
def test_each_lead_gets_the_case_study_for_its_persona_and_the_topic_it_downloaded(rep_user):
    cfo, cto = PersonaFactory(name="CFO"), PersonaFactory(name="CTO")
    guide = Resource.objects.create(name="Forecast guide", slug="forecast", topic="forecasting")
    with time_machine.travel(JAN, tick=False):
        ContentBlockFactory(title="Acme forecasts within 5%", personas=[cfo], topics="forecasting")
        ContentBlockFactory(title="Initech ships twice as often", personas=[cto])
        ContentBlockFactory(title="Why teams switch")
    sequence = sequence_with_steps({"text_template": "Hi {{ first_name }}\n{% content \"case_study\" %}",
                                    "html_template": "<p>Hi</p>{% content 'case_study' %}"})
    finance = enroll(sequence, persona=cfo, owner=rep_user).lead
    tech = enroll(sequence, persona=cto, owner=rep_user).lead
    nobody = enroll(sequence, owner=rep_user).lead
    downloaded(finance, guide)

    sent = send_batch()

    assert "Acme forecasts within 5%\nForecasts within 5% after one quarter.\n— Ana Ruiz, CFO, Acme" in sent[finance.email].body
    assert "<p><strong>Acme forecasts within 5%</strong></p>" in sent[finance.email].alternatives[0][0]
    assert "Initech ships twice as often" in sent[tech.email].body
    assert "Why teams switch" in sent[nobody.email].body and "Acme" not in sent[nobody.email].body.split("—")[0]


@pytest.mark.django_db
def test_a_price_objection_gets_the_roi_case_study_and_a_resolved_one_does_not(rep_user):
    with time_machine.travel(JAN, tick=False):
        ContentBlockFactory(title="The ROI case study", objection_category="price")
    with time_machine.travel(JAN + timedelta(days=1), tick=False):
        ContentBlockFactory(title="Newest case study")
    sequence = sequence_with_steps({"text_template": '{% content "case_study" for "objection" %}'})
    pricey, answered = (enroll(sequence, owner=rep_user).lead for _ in range(2))
    with time_machine.travel(MONDAY_10_UTC - timedelta(days=1), tick=False):
        objection_log(lead=pricey, by=rep_user, category="price", lead_words="Too expensive for us")
        objection = objection_log(lead=answered, by=rep_user, category="price", lead_words="Too expensive")
        objection_resolve(objection=objection, response="Showed the ROI", by=rep_user)

    sent = send_batch()

    assert sent[pricey.email].body.startswith("The ROI case study")
    assert sent[answered.email].body.startswith("Newest case study")


@pytest.mark.django_db
def test_a_hostile_block_is_escaped_in_the_html_part_and_its_link_must_be_a_web_address(rep_user):
    with time_machine.travel(JAN, tick=False):
        ContentBlockFactory(kind="testimonial", title="x", body='<script>alert("hi")</script>\n\nSecond <b>para</b>',
                            attribution_name="<img src=x onerror=alert(1)>", link_url="https://example.com/?a=1&b=<2>")
    sequence = sequence_with_steps({"text_template": '{% content "testimonial" %}',
                                    "html_template": '<div>{% content "testimonial" %}</div>'})
    lead = enroll(sequence, owner=rep_user).lead

    html = send_batch()[lead.email].alternatives[0][0]

    assert "<script>" not in html and "<img" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(&quot;hi&quot;)&lt;/script&gt;" in html
    assert "<p>Second &lt;b&gt;para&lt;/b&gt;</p>" in html
    assert '<a href="https://example.com/?a=1&amp;b=&lt;2&gt;">' in html
    # A link that is no web address is dropped even if a row holds one.
    assert "href" not in block_html(LibraryBlock(id=1, kind="review", title="t", link_url="javascript:alert(1)"))


@pytest.mark.django_db
def test_a_lead_without_a_block_gets_the_default_or_nothing(rep_user):
    sequence = sequence_with_steps({"text_template": 'A{% content "review" %}B{% content "review" default "Loved by 500 teams" %}C',
                                    "html_template": '{% content "review" default "<b>5 stars</b>" %}'})
    lead = enroll(sequence, owner=rep_user).lead

    message = send_batch()[lead.email]

    assert message.body.startswith("ABLoved by 500 teamsC")
    assert "&lt;b&gt;5 stars&lt;/b&gt;" in message.alternatives[0][0]


def batch_queries(count, rep_user, template):
    """The queries of one batch (not its claim) that sends a step written with `template` to `count` new leads."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    sequence = sequence_with_steps({"text_template": template}, {}, sender=rep_user)
    leads = [enroll(sequence, owner=rep_user).lead for _ in range(count)]
    with time_machine.travel(MONDAY_10_UTC - timedelta(days=1), tick=False):
        for lead in leads:
            objection_log(lead=lead, by=rep_user, category="price", lead_words="Too expensive")
    token, ids = deliveries_claim(limit=100, now=SENDING_TIME)
    rendering.book_demo_links.forget()  # each batch reads the booking pages once (a process does every few seconds)
    with time_machine.travel(SENDING_TIME, tick=False), CaptureQueriesContext(connection) as queries:
        assert deliveries_send(ids=ids, token=token, now=SENDING_TIME, connection=Connection()).sent == count
    Delivery.objects.all().delete()
    return len(queries)


@pytest.mark.django_db
def test_a_batch_reads_the_library_once_and_only_when_a_step_writes_a_block(rep_user):
    with time_machine.travel(JAN, tick=False):
        ContentBlockFactory(objection_category="price")
        ContentBlockFactory(kind="testimonial")
    plain = batch_queries(2, rep_user, "Hi {{ first_name }}")
    # The library: one more query; the leads' open objections: one more again. However many leads.
    assert batch_queries(20, rep_user, '{% content "testimonial" %}') == batch_queries(2, rep_user, '{% content "testimonial" %}') == plain + 1
    objection = '{% content "case_study" for "objection" %}'
    assert batch_queries(20, rep_user, objection) == batch_queries(2, rep_user, objection) == plain + 2


# --- Templates: checked at save, the library kept private ---------------------------------------------


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ('Hi\n{% content "case-study" %}', "unknown kind of content block “case-study” (did you mean “case_study”? "
                                            "kinds: testimonial, case_study, review) on line 2"),
        ("{% content %}", "“{% content %}” needs the kind of block in quotes"),
        ("{% content case_study %}", "needs the kind of block in quotes"),
        ('{% content "review" for "price" %}', "does not understand “for \"price\"”"),
        ('{% content "review" default first_name %}', "does not understand “default first_name”"),
        ("{{ content }}", "unknown merge field “content”"),
    ],
    ids=["unknown-kind", "no-kind", "kind-unquoted", "for-what", "default-not-text", "library-as-a-variable"],
)
def test_a_content_tag_that_cannot_be_used_is_refused_at_save_with_what_to_do(source, message):
    with pytest.raises(TemplateProblem) as exc:
        check_template(source, field="text template")
    assert message in str(exc.value)


@pytest.mark.django_db
def test_a_content_block_in_the_subject_is_refused_at_save():
    from nurturing.models import Step
    from nurturing.services import step_check

    sequence = sequence_with_steps()
    step = Step(sequence=sequence, position=2, subject_template='{% content "review" %}', text_template="Hi",
                delay=timedelta(0))
    with pytest.raises(ValidationError) as exc:
        step_check(step)
    assert exc.value.message_dict["subject_template"] == [
        'A content block goes in the body: take {% content "…" %} out of the subject.']


@pytest.mark.django_db
def test_the_library_sits_in_the_context_under_a_key_no_template_can_name(rep_user):
    with time_machine.travel(JAN, tick=False):
        ContentBlockFactory(title="Secret case study")
    sequence = sequence_with_steps({"text_template": '{% content "case_study" %}'})
    context = preview_context(step=sequence.steps.get(), lead=LeadFactory(owner=rep_user))
    assert {key for key in context if isinstance(key, str)} == set(MERGE_FIELDS)
    assert [b.title for b in context[CONTENT_KEY].blocks] == ["Secret case study"]


# --- Saving blocks -------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"kind": "testimonial", "body": " ", "attribution_name": ""},
         {"body": ["A testimonial needs the words of the customer: write them in the body."],
          "attribution_name": ["A testimonial needs who said it."]}),
        ({"kind": "review"}, {"rating": ["A review needs a rating from 1 to 5 stars."]}),
        ({"kind": "review", "rating": 6}, {"rating": ["A review needs a rating from 1 to 5 stars."]}),
        ({"rating": 5}, {"rating": ["Only reviews have a rating: clear it, or make the block a review."]}),
        ({"link_url": "ftp://example.com/story"}, {"link_url": ["The link must be a web address starting with http:// or https://."]}),
        ({"topics": "forcasting"}, {"topics": ["No resource has the topic “forcasting”, so no lead would match it. "
                                               "Did you mean “Forecasting”? Topics of the resources: Forecasting, pipeline."]}),
    ],
    ids=["testimonial-without-words-or-who", "review-without-rating", "review-of-six", "rating-not-a-review",
         "link-not-web", "unknown-topic"],
)
def test_a_block_that_cannot_be_used_is_refused_by_field_and_nothing_is_saved(marketer_user, fields, errors):
    Resource.objects.create(name="Forecast guide", slug="forecast", topic="Forecasting")
    Resource.objects.create(name="Pipeline guide", slug="pipeline", topic="pipeline")
    values = {"kind": "case_study", "title": "Acme", "body": "Words", "attribution_name": "Ana", **fields}
    with pytest.raises(ValidationError) as exc:
        content_block_save(block=ContentBlock(**values), by=marketer_user)
    assert {k: v for k, v in exc.value.message_dict.items() if k in errors} == errors
    assert not ContentBlock.objects.exists()


@pytest.mark.django_db
def test_topics_are_saved_as_the_resources_write_them_once_each(marketer_user):
    Resource.objects.create(name="Forecast guide", slug="forecast", topic="Forecasting")
    saved = ContentBlockFactory(topics=" forecasting, FORECASTING,", by=marketer_user)
    assert (saved.topics, saved.created_by) == ("Forecasting", marketer_user)


@pytest.mark.django_db
def test_a_sales_rep_cannot_save_a_block(rep_user):
    with pytest.raises(PermissionDenied):
        content_block_save(block=ContentBlock(kind="case_study", title="Mine"), by=rep_user)
    assert not ContentBlock.objects.exists()


# --- The admin -----------------------------------------------------------------------------------------


@pytest.fixture
def marketer_client(client, marketer_user):
    client.force_login(marketer_user)
    return client


@pytest.mark.django_db
def test_a_marketer_adds_a_block_and_sees_it_in_the_list_and_previewed(marketer_client):
    cfo = PersonaFactory(name="CFO")
    Resource.objects.create(name="Forecast guide", slug="forecast", topic="forecasting")
    response = marketer_client.post(reverse("admin:nurturing_contentblock_add"), {
        "kind": "testimonial", "title": "Ana on forecasting", "body": "We <b>trust</b> the forecast now.",
        "attribution_name": "Ana Ruiz", "attribution_role": "CFO", "attribution_company": "Acme",
        "link_url": "", "rating": "", "topics": "Forecasting", "personas": [cfo.pk], "objection_category": "",
        "is_active": "on",
    })
    assert response.status_code == 302
    saved = ContentBlock.objects.get()
    assert (saved.topics, list(saved.personas.all())) == ("forecasting", [cfo])

    listing = marketer_client.get(reverse("admin:nurturing_contentblock_changelist"), {"q": "forecast", "kind": "testimonial"})
    assert list(listing.context["cl"].result_list) == [saved]
    page = marketer_client.get(reverse("admin:nurturing_contentblock_change", args=[saved.pk])).content.decode()
    assert "<p>We &lt;b&gt;trust&lt;/b&gt; the forecast now.</p>" in page and "— Ana Ruiz, CFO, Acme" in page


@pytest.mark.django_db
def test_the_library_list_makes_as_many_queries_for_twelve_blocks_as_for_two(marketer_client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    personas = [PersonaFactory(name="CFO"), PersonaFactory(name="CTO")]

    def list_queries(count):
        with time_machine.travel(JAN, tick=False):
            for _ in range(count - ContentBlock.objects.count()):
                ContentBlockFactory(personas=personas)
        with CaptureQueriesContext(connection) as queries:
            page = marketer_client.get(reverse("admin:nurturing_contentblock_changelist"))
        assert len(page.context["cl"].result_list) == count
        return len(queries)

    assert list_queries(2) == list_queries(12)


@pytest.mark.django_db
def test_the_admin_shows_by_the_field_why_a_block_was_not_saved(marketer_client):
    response = marketer_client.post(reverse("admin:nurturing_contentblock_add"), {
        "kind": "review", "title": "Five stars", "body": "", "attribution_name": "", "attribution_role": "",
        "attribution_company": "", "link_url": "javascript:alert(1)", "rating": "", "topics": "",
        "objection_category": "", "is_active": "on",
    })
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["rating"] == ["A review needs a rating from 1 to 5 stars."]
    assert "link_url" in errors
    assert not ContentBlock.objects.exists()


@pytest.mark.django_db
def test_a_sales_rep_cannot_edit_the_library_in_the_admin(client, rep_user):
    with time_machine.travel(JAN, tick=False):
        saved = ContentBlockFactory()
    client.force_login(rep_user)
    response = client.post(reverse("admin:nurturing_contentblock_change", args=[saved.pk]), {"title": "Mine"})
    assert response.status_code == 302 and "/login/" in response["Location"]
    saved.refresh_from_db()
    assert saved.title != "Mine"


@pytest.mark.django_db
def test_the_step_preview_warns_when_no_block_fits_the_lead_and_counts_the_sequences_leads_without_one(
        marketer_client, rep_user):
    cfo = PersonaFactory(name="CFO")
    with time_machine.travel(JAN, tick=False):
        ContentBlockFactory(kind="testimonial", personas=[cfo])
    sequence = sequence_with_steps({"text_template": 'Hi\n{% content "testimonial" %}\n{% content "review" default "…" %}'})
    enroll(sequence, persona=cfo, owner=rep_user)
    other = enroll(sequence, owner=rep_user).lead

    page = marketer_client.get(reverse("admin:nurturing_step_preview", args=[sequence.steps.get().pk]),
                               {"lead": other.pk})

    assert [(b.kind, b.lines) for b in page.context["missing_here"]] == [("testimonial", ["text line 2"])]
    assert [(b.kind, b.leads, b.of) for b in page.context["missing_across"]] == [("testimonial", 1, 2)]
    assert "no testimonial for this lead's persona/topic" in page.content.decode()
