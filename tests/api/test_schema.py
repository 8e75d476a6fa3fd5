"""The OpenAPI 3.1 schema, generated from the code, and the docs page served by the app."""

import re

import pytest
from jsonschema import Draft202012Validator
from schemathesis.specs.openapi.definitions import OPENAPI_31

from api import urls as api_urls


@pytest.fixture
def schema(client, db):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    return response.json()


def test_the_schema_is_valid_openapi_3_1(schema):
    assert schema["openapi"].startswith("3.1.")
    # The OpenAPI Initiative's 3.1 meta-schema, as schemathesis ships it.
    Draft202012Validator(OPENAPI_31).validate(schema)


def test_the_schema_lists_the_endpoints_with_the_token_scheme_and_problem_details(schema):
    # Every endpoint the URLconf routes under /api/v1/ is documented, and nothing else is.
    routed = {
        "/" + re.sub(r"<int:(\w+)>", "{id}", str(pattern.pattern))
        for pattern in api_urls.urlpatterns
        if str(pattern.pattern).startswith("api/v1/") and pattern.name
    }
    assert {"/api/v1/leads/", "/api/v1/leads/{id}/merge/", "/api/v1/merges/{id}/undo/", "/api/v1/events/"} <= routed
    assert {"/api/v1/companies/", "/api/v1/customers/{id}/", "/api/v1/deals/{id}/lose/", "/api/v1/activities/calls/",
            "/api/v1/objections/{id}/resolve/", "/api/v1/tasks/{id}/snooze/"} <= routed
    assert MARKETING_PATHS <= routed
    assert set(schema["paths"]) == routed
    assert schema["components"]["securitySchemes"]["personalToken"] == {
        "type": "http", "scheme": "bearer", "description": schema["components"]["securitySchemes"]["personalToken"]["description"],
    }
    not_found = schema["paths"]["/api/v1/leads/{id}/"]["get"]["responses"]["404"]["content"]
    assert list(not_found) == ["application/problem+json"]
    assert schema["components"]["schemas"]["LeadCreateBodyRequest"]["additionalProperties"] is False


MARKETING_PATHS = {
    "/api/v1/sequences/", "/api/v1/sequences/{id}/", "/api/v1/enrollments/", "/api/v1/enrollments/{id}/",
    "/api/v1/enrollments/{id}/pause/", "/api/v1/enrollments/{id}/resume/", "/api/v1/enrollments/{id}/remove/",
    "/api/v1/form-submissions/", "/api/v1/form-submissions/{id}/", "/api/v1/conversions/", "/api/v1/conversions/{id}/",
    "/api/v1/campaigns/", "/api/v1/campaigns/{id}/", "/api/v1/campaign-spend/", "/api/v1/campaign-spend/{id}/",
}


def test_every_operation_is_named_tagged_summarised_with_its_problems_documented(schema):
    seen = set()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            assert operation.get("operationId") and operation["operationId"] not in seen, where
            seen.add(operation["operationId"])
            assert operation.get("tags") and operation.get("summary"), where
            responses = operation["responses"]
            for code in ("401", "403", "429"):
                assert list(responses[code]["content"]) == ["application/problem+json"], (where, code)
            if "{id}" in path:
                assert "404" in responses, where
            if method in ("post", "patch"):
                assert "400" in responses, where


def test_the_creating_posts_take_an_idempotency_key(schema):
    for path in ("/api/v1/enrollments/", "/api/v1/conversions/", "/api/v1/campaigns/", "/api/v1/campaign-spend/"):
        names = [parameter["name"] for parameter in schema["paths"][path]["post"].get("parameters", [])]
        assert "Idempotency-Key" in names, path


def test_the_docs_are_served_by_the_app_with_no_cdn_and_no_inline_script(client, db):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    sources = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', html)
    assert sources and all(src.startswith("/") and not src.startswith("//") for src in sources), sources
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "an inline script would be blocked by the CSP"
    policy = dict(part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";"))
    assert policy["script-src"] == "'self'"  # Swagger UI's inline styles are allowed on this page; scripts are not
    for src in sources:
        assert client.get(src).status_code == 200, src


def test_every_operation_has_an_id_tags_a_summary_and_problem_responses(schema):
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            assert operation.get("operationId") and operation.get("tags") and operation.get("summary"), (method, path)
            errors = [code for code in operation["responses"] if code.startswith(("4", "5"))]
            assert errors, (method, path)
            for code in errors:
                assert list(operation["responses"][code]["content"]) == ["application/problem+json"], (method, path, code)
