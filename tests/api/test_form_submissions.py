"""Form submissions over the API: read only, reps see those of the leads they may see."""

from datetime import timedelta

import pytest

from leads.models import FormSubmission, Lead, Resource
from leads.services import form_submission_record
from tests.api.conftest import Api, assert_problem, token_for
from tests.factories import LeadFactory

SUBMISSIONS = "/api/v1/form-submissions/"


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def submit(lead, slug="pricing-guide", **fields):
    return form_submission_record(lead=lead, form_name=slug.replace("-", " ").title(), form_slug=slug, **fields)


@pytest.fixture
def world(frozen, rep_user, other_rep):
    """Submissions by leads of rep1, rep2 and the pool, and one by an archived lead of rep1's, a minute apart."""
    guide = Resource.objects.create(name="Pricing guide", slug="pricing-guide")
    made = {}
    for name, owner in (("mine", rep_user), ("theirs", other_rep), ("pool", None), ("archived", rep_user)):
        lead = LeadFactory(first_name=name, owner=owner)
        made[name] = submit(lead, resource=guide, data={"first_name": name}, page_url="https://example.com/pricing",
                            touch={"utm_source": "google", "utm_campaign": "spring"},
                            consent={"text": "Yes, email me", "version": "2", "given": True})
        frozen.shift(timedelta(minutes=1))
    Lead.objects.filter(pk=made["archived"].lead_id).update(archived_at=made["archived"].submitted_at)
    made["webinar"] = submit(made["mine"].lead, slug="webinar")
    return made


def test_a_rep_lists_the_submissions_of_the_leads_they_may_see_newest_first(world, rep_api, manager_api):
    assert ids(rep_api.get(SUBMISSIONS)) == [world[n].pk for n in ("webinar", "pool", "mine")]
    assert ids(manager_api.get(SUBMISSIONS)) == [world[n].pk for n in ("webinar", "pool", "theirs", "mine")]


def test_a_submission_shows_the_form_the_visit_and_the_consent(world, marketer_api):
    body = marketer_api.get(f"{SUBMISSIONS}{world['mine'].pk}/").json()
    assert body["form_slug"] == "pricing-guide" and body["lead_id"] == world["mine"].lead_id
    assert (body["utm_source"], body["utm_campaign"], body["consent_given"], body["consent_version"]) == (
        "google", "spring", True, "2")
    assert body["resource"]["slug"] == "pricing-guide"
    assert body["data"] == {"first_name": "mine"}
    assert body["submitted_at"] == "2026-06-01T09:00:00Z"


def test_another_reps_or_an_archived_leads_submission_is_404(world, rep_api, manager_api):
    assert_problem(rep_api.get(f"{SUBMISSIONS}{world['theirs'].pk}/"), 404)
    assert_problem(manager_api.get(f"{SUBMISSIONS}{world['archived'].pk}/"), 404)
    assert_problem(manager_api.get(f"{SUBMISSIONS}0/"), 404)
    assert rep_api.get(f"{SUBMISSIONS}{world['pool'].pk}/").status_code == 200


def test_submissions_filter_by_form_lead_and_time(world, manager_api):
    assert ids(manager_api.get(SUBMISSIONS, {"form": "webinar"})) == [world["webinar"].pk]
    assert ids(manager_api.get(SUBMISSIONS, {"lead": world["mine"].lead_id})) == [world["webinar"].pk, world["mine"].pk]
    window = {"submitted_after": "2026-06-01T09:01:00Z", "submitted_before": "2026-06-01T09:03:00Z"}
    assert ids(manager_api.get(SUBMISSIONS, window)) == [world["pool"].pk, world["theirs"].pk]


def test_a_rep_filtering_by_another_reps_lead_gets_nothing(world, rep_api):
    assert ids(rep_api.get(SUBMISSIONS, {"lead": world["theirs"].lead_id})) == []


@pytest.mark.parametrize(("params", "field"), [
    ({"form": "not a slug"}, "form"), ({"submitted_after": "yesterday"}, "submitted_after"),
    ({"submitted_before": "9999-12-31T23:59:59-23:59"}, "submitted_before"), ({"page_size": 0}, "page_size"),
    ({"cursor": "abc"}, "cursor"), ({"forms": "x"}, "forms"),
])
def test_bad_filters_are_400_naming_them(world, manager_api, params, field):
    assert_problem(manager_api.get(SUBMISSIONS, params), 400, field=field)


def test_submissions_page_with_a_cursor(world, manager_api):
    first = manager_api.get(SUBMISSIONS, {"page_size": 3}).json()
    second = manager_api.get(SUBMISSIONS, {"page_size": 3, "cursor": first["next_cursor"]}).json()
    assert [r["id"] for r in first["results"] + second["results"]] == [world[n].pk for n in ("webinar", "pool", "theirs", "mine")]
    assert second["next_cursor"] is None


def test_submissions_need_the_marketing_read_scope(world, rep_user, frozen):
    body = assert_problem(Api(token_for(rep_user, scopes=["leads:read"])).get(SUBMISSIONS), 403)
    assert body["missing_scope"] == "marketing:read"
    assert_problem(Api(token_for(rep_user)).post(SUBMISSIONS, {}), 405)


@pytest.mark.parametrize("size", [10, 100])
def test_listing_submissions_takes_the_same_queries_at_any_page_size(frozen, manager_user, django_assert_max_num_queries, size):
    resource = Resource.objects.create(name="Guide", slug="guide")
    lead = LeadFactory()
    FormSubmission.objects.bulk_create(
        FormSubmission(lead=lead, form_name="Guide", form_slug="guide", resource=resource) for _ in range(size)
    )
    api = Api(token_for(manager_user))
    api.get(SUBMISSIONS, {"page_size": 1})
    with django_assert_max_num_queries(6):
        assert len(ids(api.get(SUBMISSIONS, {"page_size": size}))) == size
