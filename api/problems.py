"""Every error of the API as an RFC 9457 problem details object (`application/problem+json`).

    {"type": "https://crm.example/problems/validation", "title": "Invalid request", "status": 400,
     "detail": "...", "instance": "/api/v1/leads/", "errors": [{"field": "email", "detail": "..."}]}

`errors` names each field that was wrong (a dotted path into the body, or the
query parameter or header); a service's rule (a stage the lead cannot move
to, a duplicate email) is a 422 naming its field the same way. An exception
nobody expected is a 500 with a generic message: what went wrong is logged,
never sent.
"""

import logging
import sys

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from django.shortcuts import render
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response

from core.http import UNAVAILABLE_MESSAGES, database_unavailable

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/problem+json"

# (type slug, title) by status; the type is a URI under the site that names the kind of problem.
_KINDS = {
    400: ("bad-request", "Bad request"),
    401: ("unauthenticated", "Authentication required"),
    403: ("forbidden", "Not allowed"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    409: ("conflict", "Conflict"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("unprocessable", "The request breaks a rule"),
    429: ("rate-limited", "Too many requests"),
    500: ("server-error", "Server error"),
    503: ("unavailable", "Cannot save now"),
}


def problem_type(slug: str) -> str:
    return f"{settings.CRM_SITE_URL}/api/problems/{slug}"


def problem(status_code: int, detail: str, *, instance: str = "", kind: str = "", title: str = "",
            errors: list | None = None, **extra) -> dict:
    slug, default_title = _KINDS.get(status_code, ("error", "Error"))
    body = {
        "type": problem_type(kind or slug),
        "title": title or default_title,
        "status": status_code,
        "detail": detail,
        "instance": instance,
    }
    if errors is not None:
        body["errors"] = errors
    body.update(extra)
    return body


def problem_response(status_code: int, detail: str, *, request=None, headers=None, **kwargs) -> Response:
    body = problem(status_code, detail, instance=request.path if request is not None else "", **kwargs)
    return Response(body, status=status_code, headers=headers, content_type=CONTENT_TYPE)


def _flatten(detail, path: str = "") -> list[dict]:
    """DRF's nested error detail ({"field": ["msg"], "nested": {"x": [...]}}) as [{"field", "detail"}]."""
    if isinstance(detail, dict):
        rows = []
        for key, value in detail.items():
            name = "" if key in ("non_field_errors", NON_FIELD_ERRORS) else str(key)
            rows.extend(_flatten(value, f"{path}.{name}" if path and name else (name or path)))
        return rows
    if isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            return [{"field": path or None, "detail": str(item)} for item in detail]
        rows = []
        for index, item in enumerate(detail):
            rows.extend(_flatten(item, f"{path}.{index}" if path else str(index)))
        return rows
    return [{"field": path or None, "detail": str(detail)}]


def _summary(errors: list[dict]) -> str:
    fields = sorted({row["field"] for row in errors if row["field"]})
    if fields:
        return f"Check {', '.join(fields)}: see errors."
    return errors[0]["detail"] if errors else "The request is not valid."


def service_errors(exc: DjangoValidationError) -> list[dict]:
    if hasattr(exc, "error_dict"):
        return _flatten(exc.message_dict)
    return [{"field": None, "detail": message} for message in exc.messages]


def exception_handler(exc, context):
    """DRF's exception handler: every exception a view raises becomes problem details."""
    request = context.get("request")
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
        return problem_response(400, _summary(errors), request=request, kind="validation",
                                title="Invalid request", errors=errors)
    if isinstance(exc, DjangoValidationError):
        errors = service_errors(exc)
        return problem_response(422, _summary(errors) if any(r["field"] for r in errors) else " ".join(exc.messages),
                                request=request, errors=errors)
    if isinstance(exc, Http404):
        return problem_response(404, "No such resource, or not one you may see.", request=request)
    if isinstance(exc, PermissionDenied):
        return problem_response(403, str(exc) or "You may not do this.", request=request)
    if isinstance(exc, exceptions.APIException):
        headers = {}
        if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
            code = status.HTTP_401_UNAUTHORIZED
            headers["WWW-Authenticate"] = 'Bearer realm="api"'
        else:
            code = exc.status_code
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
            headers["Retry-After"] = str(max(1, int(exc.wait)))
        if isinstance(exc, exceptions.MethodNotAllowed):
            view = context.get("view")
            if view is not None:
                headers["Allow"] = ", ".join(view.allowed_methods)
        extra = getattr(exc, "problem_extra", {})
        detail = exc.detail if isinstance(exc.detail, str) else " ".join(str(d) for d in _flatten(exc.detail))
        return problem_response(code, str(detail), request=request, headers=headers, **extra)
    unavailable = database_unavailable(exc)
    if unavailable:
        log.error("API: the database cannot write (%s): %s", unavailable, exc)
        return problem_response(503, UNAVAILABLE_MESSAGES[unavailable], request=request, headers={"Retry-After": "60"})
    log.exception("API: unexpected error on %s %s", getattr(request, "method", "?"), getattr(request, "path", "?"))
    return problem_response(500, "Something went wrong on our side; it has been logged. Try again later.",
                            request=request)


@csrf_exempt
def not_found(request, *args, **kwargs):
    """Any path under /api/v1/ that names no endpoint (a plain Django view: no token needed to be told)."""
    body = problem(404, "No such endpoint. The endpoints are listed at /api/docs/.", instance=request.path)
    return JsonResponse(body, status=404, content_type=CONTENT_TYPE)


def bad_request(request, exception=None, *args, **kwargs):
    """The project's 400 handler: problem details under /api/v1/ (a request Django refuses before any view,
    such as one with a Host header that is not allowed), the site's page elsewhere."""
    if request.path.startswith("/api/v1/"):
        body = problem(400, "The request is malformed (its Host header, or another part Django cannot read).",
                       instance=request.path)
        return JsonResponse(body, status=400, content_type=CONTENT_TYPE)
    return defaults.bad_request(request, exception)


def server_error(request, *args, **kwargs):
    """The project's 500 handler: problem details under /api/v1/ (an error outside the API's views, in a
    middleware), the site's page elsewhere. A database that cannot write (read-only, disk full, down) is a 503
    that says so, with Retry-After: nothing was saved (the services write whole transactions or nothing)."""
    unavailable = database_unavailable(sys.exc_info()[1])
    if unavailable:
        return database_unavailable_response(request, unavailable)
    if request.path.startswith("/api/v1/"):
        body = problem(500, "Something went wrong on our side; it has been logged. Try again later.", instance=request.path)
        return JsonResponse(body, status=500, content_type=CONTENT_TYPE)
    return defaults.server_error(request)


def database_unavailable_response(request, kind: str):
    message = UNAVAILABLE_MESSAGES[kind]
    headers = {"Retry-After": "60"}
    if request.path.startswith("/api/v1/"):
        return JsonResponse(problem(503, message, instance=request.path), status=503, content_type=CONTENT_TYPE,
                            headers=headers)
    if request.path.startswith(tuple(settings.CRM_LEAN_PATH_PREFIXES)) or "json" in request.headers.get("Accept", ""):
        return JsonResponse({"error": message}, status=503, headers=headers)
    response = render(request, "503.html", {"message": message}, status=503)
    response["Retry-After"] = headers["Retry-After"]
    return response
