"""The template sandbox: what a step's template may use, and how far its rendering may go."""

import time

import pytest

from nurturing.models import Step
from nurturing.rendering import CompiledStep, TemplateProblem, check_template, lead_context
from tests.factories import LeadFactory

LONG = '"' + "x" * 3000 + '"'


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("Hi\n{% debug %}", "the tag “{% debug %}” on line 2 cannot be used"),
        ("{% lorem 200000 w %}", "the tag “{% lorem %}” on line 1 cannot be used"),
        ("{% load humanize %}", "the tag “{% load %}” on line 1"),
        ('{% include "admin/base.html" %}', "the tag “{% include %}”"),
        ('{% extends "x.html" %}', "the tag “{% extends %}”"),
        ("{% cycle 'a' 'b' %}", "the tag “{% cycle %}”"),
        ("{% widthratio 1 2 3 %}", "the tag “{% widthratio %}”"),
        ("{% autoescape off %}{{ first_name }}{% endautoescape %}", "the tag “{% autoescape %}”"),
        ("{{ first_name|safe }}", "the filter “|safe” on line 1 cannot be used"),
        ('{{ first_name|stringformat:"099999999d" }}', "the filter “|stringformat”"),
        ('{% if first_name|floatformat:"99999" %}x{% endif %}', "the filter “|floatformat”"),
        ('Hi\n\n{{ first_name|ljust:"50000000" }}', "“|ljust” on line 3 pads to at most 200 characters, not 50000000"),
        ("{{ first_name|center:lead.phone }}", "“|center” on line 1 takes a width written as a number"),
        ("{% for a in " + LONG + " %}{{ a }}{% endfor %}", "the loop on line 1 goes over a fixed text or number"),
        ("{% for n in 12 %}x{% endfor %}", "goes over a fixed text or number"),
        (
            "{% for a in lead %}\n{% for b in company %}\n{% for c in owner %}x{% endfor %}{% endfor %}{% endfor %}",
            "a loop on line 3 is nested 3 deep: put at most 2 loops inside each other",
        ),
    ],
    ids=[
        "debug", "lorem", "load", "include", "extends", "cycle", "widthratio", "autoescape", "safe", "stringformat",
        "filter-in-a-tag", "wide-padding", "padding-by-a-field", "loop-over-text", "loop-over-a-number", "three-loops-deep",
    ],
)
def test_what_the_sandbox_lacks_is_refused_by_name_with_its_line_and_what_to_do(source, message):
    with pytest.raises(TemplateProblem) as exc:
        check_template(source, field="text template")
    assert str(exc.value).startswith("text template: ")
    assert message in str(exc.value)


def test_the_refusal_of_a_tag_says_which_tags_can_be_used():
    with pytest.raises(TemplateProblem, match="Remove it; the tags you can use are: if, for, with, firstof, now, comment, spaceless"):
        check_template("{% debug %}")


def test_what_a_marketer_needs_passes():
    check_template(
        "{% with name=first_name|default:'there'|title %}Hi {{ name }},{% endwith %}\n"
        "{% if company.name and resource.title %}{{ company.name|upper }} read {{ resource.title|truncatewords:8 }}.{% else %}Hello.{% endif %}\n"
        "{% firstof owner.full_name sender.full_name 'The team' as signature %}{{ signature }}\n"
        "{% now 'Y' as year %}© {{ year }} {{ links.book_demo|urlencode }} {{ lead.title|ljust:'20' }}|\n"
        "{% for key, value in lead.items %}{% for letter in value %}{{ letter }}{% endfor %}{% empty %}-{% endfor %}\n"
        "{% spaceless %}<p> {{ first_name|capfirst }} </p>{% endspaceless %}{% comment %}{% debug %}{{ x|safe }}{% endcomment %}"
    )


def test_a_template_saved_before_the_sandbox_fails_at_sending_naming_what_it_lacks():
    step = Step(subject_template="Hi", text_template="Hello\n{% lorem 200000 w %}")
    with pytest.raises(TemplateProblem, match="the tag “{% lorem %}” on line 2 cannot be used"):
        CompiledStep(step).render({})


def test_a_wide_padding_saved_before_the_sandbox_stops_rendering_with_the_reason():
    step = Step(subject_template="Hi", text_template='{{ first_name|ljust:"50000000" }}')
    with pytest.raises(TemplateProblem, match="pads to at most 200 characters, not 50000000"):
        CompiledStep(step).render({"first_name": "Ann"})


@pytest.mark.django_db
def test_rendering_stops_when_a_part_grows_past_its_size(settings):
    settings.CRM_NURTURE_RENDER_MAX_CHARS = 10_000
    step = Step(subject_template="Hi", text_template="Hello\n{% for a in lead.email %}{% for b in lead.email %}" + "y" * 50 + "{% endfor %}{% endfor %}")
    lead = LeadFactory(email="a-rather-long-address-for-a-loop@example.org")

    with pytest.raises(TemplateProblem, match=r"plain-text body: longer than 10,000 characters once rendered \(stopped at line 2\)"):
        CompiledStep(step).render(lead_context(lead))


def test_rendering_stops_when_an_email_takes_longer_than_its_time(settings):
    settings.CRM_NURTURE_RENDER_MAX_SECONDS = 0.2
    # Nine million turns of two empty loops: minutes, with nothing written.
    step = Step(subject_template="Hi", text_template="{% for a in " + LONG + " %}{% for b in " + LONG + " %}{% endfor %}{% endfor %}")

    started = time.monotonic()
    with pytest.raises(TemplateProblem, match="plain-text body: rendering took longer than 0.2 seconds"):
        CompiledStep(step).render({})
    assert time.monotonic() - started < 5


def test_a_subject_longer_than_a_delivery_keeps_is_refused_at_rendering():
    step = Step(subject_template="{% for c in first_name %}Hello {% endfor %}", text_template="x")
    with pytest.raises(TemplateProblem, match="subject: longer than 300 characters"):
        CompiledStep(step).render({"first_name": "x" * 60})


# --- Bounded rendering, exactly ------------------------------------------------------------


def bounded(source: str, values: dict | None = None, *, max_chars: int = 1000, seconds: float = 60) -> str:
    from nurturing.sandbox import ENGINE, Deadline, SandboxTemplate

    template = SandboxTemplate(ENGINE.from_string(source), part="body")
    return template.render(values or {}, autoescape=False, max_chars=max_chars, deadline=Deadline.after(seconds))


def test_loop_variables_single_and_unpacked_render_in_the_sandbox():
    values = {"name": "Ada", "pairs": [("plan", "Team"), ("seats", 5)]}
    assert bounded("{% for c in name %}[{{ c }}]{% endfor %}", values) == "[A][d][a]"
    assert bounded("{% for key, value in pairs %}{{ key }}={{ value }};{% endfor %}", values) == "plan=Team;seats=5;"


def test_every_allowed_tag_renders_in_the_sandbox():
    source = (
        "{% if name %}Hi {{ name }}{% elif other %}x{% else %}y{% endif %}|{% firstof missing name %}|"
        "{% with n=name|upper %}{{ n }}{% endwith %}|{% comment %}hidden{% endcomment %}|"
        "{% spaceless %}<p> <b>x</b> </p>{% endspaceless %}|{% now 'Y' as year %}{{ year|length }}"
    )
    assert bounded(source, {"name": "Ada"}) == "Hi Ada|Ada|ADA||<p><b>x</b></p>|4"


def test_a_part_may_be_exactly_as_long_as_its_limit_and_not_one_character_longer():
    assert bounded("0123456789", max_chars=10) == "0123456789"
    # Inside a container the text counts once (where it is written), not again for the container around it.
    assert bounded("{% if yes %}{% for c in ten %}{{ c }}{% endfor %}{% endif %}", {"yes": True, "ten": "0123456789"},
                   max_chars=10) == "0123456789"
    with pytest.raises(TemplateProblem) as refused:
        bounded("0123456789A", max_chars=10)
    assert str(refused.value) == (
        "body: longer than 10 characters once rendered (stopped at line 1). Make it shorter, or take out the loop that repeats it."
    )


def test_text_inside_a_branch_is_counted_and_the_message_says_which_line():
    with pytest.raises(TemplateProblem) as refused:
        bounded("Hi\n{% if yes %}\n{% for c in ten %}{{ c }}{{ c }}{% endfor %}{% endif %}", {"yes": 1, "ten": "0123456789"},
                max_chars=10)
    assert str(refused.value).startswith("body: longer than 10 characters once rendered (stopped at line 3).")


def test_running_out_of_time_says_how_long_where_and_what_to_do(settings):
    with pytest.raises(TemplateProblem) as refused:
        bounded("Hi\n{{ name }}", {"name": "Ada"}, seconds=-1)  # a deadline already past
    assert str(refused.value) == (
        "body: rendering took longer than -1 seconds (stopped at line 1). Take out the loop that repeats it, or make it shorter."
    )


def test_padding_is_allowed_up_to_its_limit_and_refused_past_it_with_the_reason():
    from nurturing.sandbox import MAX_PADDING, padding_width

    assert MAX_PADDING == 200 and padding_width("ljust", "200") == 200
    assert len(bounded('{{ name|rjust:"200" }}', {"name": "Ada"})) == 200
    with pytest.raises(TemplateProblem) as refused:
        padding_width("ljust", "201")
    assert str(refused.value) == "“|ljust” pads to at most 200 characters, not 201: give a smaller width."
    with pytest.raises(TemplateProblem) as refused:
        padding_width("center", "wide")
    assert str(refused.value) == "“|center” takes a width written as a number, e.g. |center:\"20\"."


def test_rendering_may_take_exactly_its_time_and_not_a_moment_more(monkeypatch):
    from types import SimpleNamespace

    from nurturing import sandbox

    clock = SimpleNamespace(now=100.0)
    monkeypatch.setattr(sandbox, "time", SimpleNamespace(monotonic=lambda: clock.now))
    deadline = sandbox.Deadline.after(2)
    template = sandbox.SandboxTemplate(sandbox.ENGINE.from_string("{{ name }}"), part="body")

    clock.now = 102.0
    assert template.render({"name": "Ada"}, autoescape=False, max_chars=100, deadline=deadline) == "Ada"
    clock.now = 102.001
    with pytest.raises(TemplateProblem, match="rendering took longer than 2 seconds"):
        template.render({"name": "Ada"}, autoescape=False, max_chars=100, deadline=deadline)
