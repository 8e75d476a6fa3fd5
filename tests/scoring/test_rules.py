"""The score's arithmetic: fit once, engagement per action up to a cap, decay by half-life, lines that add up."""

from datetime import UTC, datetime, timedelta

from leads.models import Resource
from scoring.models import ScoringRule
from scoring.rules import Action, Facts, breakdown_text, page_matches, score_compute

K = ScoringRule.Kind
NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def rule(kind, points, **fields):
    return ScoringRule(kind=kind, points=points, **fields)


def test_fit_rules_count_once_and_engagement_counts_each_action_up_to_its_cap():
    rules = [rule(K.TITLE, 20, value="founder"), rule(K.PAGE_VIEW, 15, value="/pricing", max_times=2),
             rule(K.COUNTRY, 5, value="Germany")]
    facts = Facts(title="Co-Founder & CEO", country="germany", actions=[
        Action(K.PAGE_VIEW, NOW, "/pricing"), Action(K.PAGE_VIEW, NOW, "/pricing/teams"),
        Action(K.PAGE_VIEW, NOW, "/pricing"), Action(K.PAGE_VIEW, NOW, "/blog")])

    score = score_compute(facts, rules, now=NOW, half_life_days=0)

    assert (score.total, score.fit, score.engagement) == (55, 25, 30)
    assert breakdown_text(score.lines_as_dicts()) == "+20 title “founder”, +5 country Germany, +30 page /pricing ×2"


def test_engagement_halves_every_half_life_and_the_decay_line_makes_the_lines_add_up():
    rules = [rule(K.EMAIL_REPLY, 40), rule(K.EMAIL_CLICK, 10, value="pricing", max_times=3)]
    facts = Facts(actions=[
        Action(K.EMAIL_REPLY, NOW - timedelta(days=30)),  # one half-life: 20
        Action(K.EMAIL_CLICK, NOW - timedelta(days=60), "https://x.test/pricing"),  # two: 2.5
        Action(K.EMAIL_CLICK, NOW, "https://x.test/blog"),  # another link: not this rule's
    ])

    score = score_compute(facts, rules, now=NOW, half_life_days=30)

    assert score.engagement == 22  # 20 + 2.5, rounded
    lines = score.lines_as_dicts()
    assert lines[-1] == {"label": "decay", "points": 22 - 50, "times": 1}
    assert sum(line["points"] for line in lines) == score.total == 22


def test_the_latest_actions_are_the_ones_counted():
    rules = [rule(K.EMAIL_OPEN, 10, max_times=1)]
    old, new = Action(K.EMAIL_OPEN, NOW - timedelta(days=90)), Action(K.EMAIL_OPEN, NOW - timedelta(days=1))
    score = score_compute(Facts(actions=[old, new]), rules, now=NOW, half_life_days=30)
    assert score.engagement == round(10 * 0.5 ** (1 / 30))


def test_switched_off_rules_future_actions_and_empty_values_earn_nothing():
    rules = [rule(K.TITLE, 20, value="", is_active=True), rule(K.EMAIL_OPEN, 5, is_active=False),
             rule(K.FORM, 10, value="demo")]
    facts = Facts(title="Founder", actions=[Action(K.EMAIL_OPEN, NOW), Action(K.FORM, NOW + timedelta(hours=1), "demo"),
                                             Action(K.FORM, NOW, "newsletter")])
    score = score_compute(facts, rules, now=NOW, half_life_days=30)
    assert (score.total, score.lines) == (0, ())
    assert breakdown_text([]) == "no rule matches"


def test_a_download_rule_matches_a_form_that_gave_a_resource():
    rules = [rule(K.DOWNLOAD, 15, resource=Resource(pk=7, name="Pipeline guide")), rule(K.DOWNLOAD, 5)]
    facts = Facts(actions=[Action(K.FORM, NOW, "guide", 7), Action(K.FORM, NOW, "contact", None)])
    score = score_compute(facts, rules, now=NOW, half_life_days=0)
    assert breakdown_text(score.lines_as_dicts()) == "+15 download Pipeline guide, +5 download"


def test_negative_points_show_with_a_minus():
    score = score_compute(Facts(title="Student"), [rule(K.TITLE, -30, value="student")], now=NOW, half_life_days=0)
    assert breakdown_text(score.lines_as_dicts()) == "−30 title “student”"


def test_a_page_path_matches_itself_and_what_is_below_it_only():
    assert page_matches("/pricing", "/pricing")
    assert page_matches("/pricing/", "/pricing/teams")
    assert not page_matches("/pricing", "/pricing-old")
    assert not page_matches("/pricing", "/blog/pricing")
