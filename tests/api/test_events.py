"""The event log over the API: read after a cursor, by type and lead, within what the user may see."""

from datetime import timedelta

from tests.api.conftest import Api, assert_problem, token_for
from tests.factories import LeadFactory

EVENTS = "/api/v1/events/"


def results(response):
    assert response.status_code == 200, response.content
    return response.json()


def test_events_are_read_after_a_cursor_once_settled(frozen, manager_api, rep_user):
    lead = LeadFactory(owner=rep_user)
    assert results(manager_api.get(EVENTS))["results"] == []  # younger than the settle time
    frozen.shift(timedelta(seconds=10))
    page = results(manager_api.get(EVENTS, {"limit": 1}))
    first = page["results"][0]
    assert (first["type"], first["lead_id"], first["actor"]["kind"]) == ("api_token.created", None, "user")
    page = results(manager_api.get(EVENTS, {"after": page["next_after"]}))
    assert [(e["type"], e["lead_id"]) for e in page["results"]] == [("lead.created", lead.pk)]
    assert results(manager_api.get(EVENTS, {"after": page["next_after"]})) == {"results": [], "next_after": page["next_after"]}


def test_events_filter_by_type_and_lead(frozen, manager_api, rep_user):
    a, b = LeadFactory(owner=rep_user), LeadFactory(owner=rep_user)
    manager_api.post(f"/api/v1/leads/{a.pk}/stage/", {"to_status": "contacted"})
    frozen.shift(timedelta(seconds=10))
    assert [e["lead_id"] for e in results(manager_api.get(EVENTS, {"type": "lead.created"}))["results"]] == [a.pk, b.pk]
    by_lead = results(manager_api.get(EVENTS, {"lead": a.pk}))["results"]
    assert [e["type"] for e in by_lead] == ["lead.created", "lead.stage_changed"]
    assert by_lead[1]["payload"] == {"from": "new", "to": "contacted"}


def test_a_rep_reads_only_the_events_of_leads_they_may_see(frozen, rep_user, other_rep):
    mine, theirs, pool = LeadFactory(owner=rep_user), LeadFactory(owner=other_rep), LeadFactory(owner=None)
    api = Api(token_for(rep_user, scopes=["events:read"]))
    frozen.shift(timedelta(seconds=10))
    seen = {e["lead_id"] for e in results(api.get(EVENTS))["results"]}
    assert seen == {mine.pk, pool.pk}
    assert results(api.get(EVENTS, {"lead": theirs.pk}))["results"] == []


def test_reading_events_needs_the_events_scope(frozen, rep_user):
    body = assert_problem(Api(token_for(rep_user, scopes=["leads:read"])).get(EVENTS), 403)
    assert body["missing_scope"] == "events:read"
