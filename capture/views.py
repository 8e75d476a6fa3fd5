"""The ways a form comes in: its hosted page, a plain HTML form embedded in the team's site, and JSON.

Each only parses the request and shows the answer; capture.services holds the rules.
"""

import json
from urllib.parse import urlsplit

from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from core.http import client_address, host_allowed
from core.middleware import lean_endpoint

from .captcha import captcha, captcha_allow
from .models import CaptureForm
from .selectors import capture_form_get
from .services import CaptureContext, CaptureRefused, capture_submit, fill_token

MAX_BODY_BYTES = 16 * 1024
CONTROL = ("crm_token", "crm_hp", "crm_visitor", "crm_page", "crm_landing", "crm_referrer")


def _form(slug) -> CaptureForm:
    form = capture_form_get(slug)
    if form is None:
        raise Http404("No such form, or it is closed.")
    return form


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "") if url else ""


def _origin_host(request) -> str:
    return _host(request.META.get("HTTP_ORIGIN", "")) or _host(request.META.get("HTTP_REFERER", ""))


def _page(request, form, *, data=None, errors=None, status=200, done=False):
    errors = errors or {}
    names = {spec["name"] for spec in form.fields} | {"consent"}
    context = {
        "form": form, "data": data or {}, "errors": errors, "done": done, "token": fill_token(form), "captcha": captcha(),
        # What is not a field's (the form as a whole, its token) is said above the form.
        "general_errors": [message for name, message in errors.items() if name not in names],
        "visitor": (data or {}).get("crm_visitor") or request.GET.get("crm_v", ""),
        "landing": (data or {}).get("crm_landing") or request.GET.get("crm_lp", ""),
        "referrer": (data or {}).get("crm_referrer") or request.headers.get("Referer", ""),
    }
    response = render(request, "capture/form_page.html", context, status=status)
    if context["captcha"]:
        captcha_allow(response, context["captcha"])
    return response


def _html_context(request, *, hosted: bool) -> CaptureContext:
    post = request.POST
    return CaptureContext(
        page_url=post.get("crm_page", "") or request.headers.get("Referer", ""), referrer=post.get("crm_referrer", ""),
        landing_page=post.get("crm_landing", ""), visitor_id=post.get("crm_visitor", "")[:40],
        address=client_address(request), origin_host="" if hosted else _origin_host(request), hosted=hosted,
        # The hosted page always carries a token; a plain form pasted into a website cannot.
        fill_token=post.get("crm_token", "") if hosted or "crm_token" in post else None,
        honeypot=post.get("crm_hp", ""),
        captcha=post.get(captcha()["field"], "") if captcha() else "",
    )


def _html_submit(request, form, *, hosted: bool):
    data = {k: v for k, v in request.POST.items() if k not in CONTROL}
    try:
        result = capture_submit(form, data, _html_context(request, hosted=hosted))
    except CaptureRefused as refusal:
        response = _page(request, form, data=request.POST, errors=refusal.errors, status=refusal.status
                         if refusal.status != 400 else 422)
        if refusal.retry_after:
            response["Retry-After"] = str(refusal.retry_after)
        return response
    del result  # a quarantined submission is thanked like any other: a spammer learns nothing
    if form.thank_you_url:
        return HttpResponseRedirect(form.thank_you_url)
    return _page(request, form, done=True)


@require_http_methods(["GET", "POST"])
def hosted(request, slug):
    """The form's own page on the CRM: /f/<slug>/."""
    form = _form(slug)
    if request.method == "POST":
        return _html_submit(request, form, hosted=True)
    return _page(request, form)


@csrf_exempt
@require_http_methods(["POST"])
def embedded(request, slug):
    """A plain HTML form in the team's website posts here; it works without JavaScript."""
    return _html_submit(request, _form(slug), hosted=False)


def _cors(response, request, form):
    origin = request.META.get("HTTP_ORIGIN", "")
    if origin and host_allowed(_host(origin), form.sites()):
        response["Access-Control-Allow-Origin"] = origin
        response["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        response["Access-Control-Allow-Headers"] = "Content-Type"
        response["Vary"] = "Origin"
    return response


def _json_error(request, form, status, errors, retry_after=0):
    response = _cors(JsonResponse({"errors": errors}, status=status), request, form)
    if retry_after:
        response["Retry-After"] = str(retry_after)
    return response


@lean_endpoint
@csrf_exempt
def token(request, slug):
    """A fresh fill-time token for the JavaScript version of an embedded form."""
    form = _form(slug)
    return _cors(JsonResponse({"token": fill_token(form)}), request, form)


def _honeypot(value) -> str:
    """The hidden field's value: absent or empty for a person; anything else (a number, a list) is a robot's."""
    if value is None:
        return ""
    return value if isinstance(value, str) else "filled"


@lean_endpoint
@csrf_exempt
def api_submit(request, slug):
    """POST JSON: {"fields": {...}, "context": {"page_url", "referrer", "landing_page", "visitor_id"},
    "crm_token": "...", "crm_hp": ""}. Answers 201 with the thank-you, or the errors by field."""
    form = _form(slug)
    if request.method == "OPTIONS":
        return _cors(JsonResponse({}, status=204), request, form)
    if request.method != "POST":
        return _json_error(request, form, 405, {"": "POST the form's fields here."})
    if request.content_type != "application/json":
        return _json_error(request, form, 415, {"": "Send the form as application/json."})
    body = request.read(MAX_BODY_BYTES + 1)  # whatever Content-Length says: no more than this is read
    if len(body) > MAX_BODY_BYTES:
        return _json_error(request, form, 413, {"": f"A form is at most {MAX_BODY_BYTES // 1024} kB."})
    try:
        payload = json.loads(body)
    except ValueError:
        return _json_error(request, form, 400, {"": "The body is not JSON."})
    if not isinstance(payload, dict) or not isinstance(payload.get("fields"), dict):
        return _json_error(request, form, 400, {"fields": "Send the form's fields as an object under \"fields\"."})
    unknown = set(payload) - {"fields", "context", "crm_token", "crm_hp", "crm_captcha"}
    if unknown:
        return _json_error(request, form, 400, {name: "Unknown field." for name in sorted(unknown)})
    extra = payload.get("context") or {}
    if not isinstance(extra, dict) or set(extra) - {"page_url", "referrer", "landing_page", "visitor_id"}:
        return _json_error(request, form, 400, {"context": "Give page_url, referrer, landing_page and visitor_id only."})
    text = {key: value if isinstance(value, str) else "" for key, value in extra.items()}
    context = CaptureContext(
        page_url=text.get("page_url", "")[:1000], referrer=text.get("referrer", "")[:1000],
        landing_page=text.get("landing_page", "")[:1000], visitor_id=text.get("visitor_id", "")[:40],
        address=client_address(request), origin_host=_origin_host(request),
        fill_token=payload.get("crm_token") if isinstance(payload.get("crm_token"), str) else "",
        honeypot=_honeypot(payload.get("crm_hp")),
        captcha=payload.get("crm_captcha") if isinstance(payload.get("crm_captcha"), str) else "",
    )
    try:
        capture_submit(form, payload["fields"], context, strict=True)
    except CaptureRefused as refusal:
        return _json_error(request, form, refusal.status, refusal.errors, refusal.retry_after)
    body = {"message": form.thank_you_message}
    if form.thank_you_url:
        body["redirect"] = form.thank_you_url
    return _cors(JsonResponse(body, status=201), request, form)
