"""The tracking endpoints: a JSON hit from the snippet, and the no-script pixel.

Both answer at once: the hit is checked and queued (traffic.ingest.hit_accept),
never written to the database in the request. Errors are JSON naming the field.
"""

import base64
import json

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from core.http import client_address
from core.middleware import lean_endpoint

from .ingest import MAX_BODY_BYTES, Client, HitRefused, hit_accept
from .queue import QueueFull

# A transparent 1x1 GIF.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
ACCEPTED_TYPES = ("text/plain", "application/json")


def _client(request) -> Client:
    meta = request.META
    return Client(
        address=client_address(request),
        user_agent=meta.get("HTTP_USER_AGENT", ""),
        accept_language=meta.get("HTTP_ACCEPT_LANGUAGE", ""),
        do_not_track=meta.get("HTTP_DNT") == "1" or meta.get("HTTP_SEC_GPC") == "1",
    )


def _cors(response, request, *, preflight: bool = False):
    origin = request.META.get("HTTP_ORIGIN")
    if origin:
        response["Access-Control-Allow-Origin"] = origin if settings.CRM_TRACKING_SITES else "*"
        response["Vary"] = "Origin"
        if preflight:  # what a browser asks before a POST of application/json; a beacon's text/plain needs none
            response["Access-Control-Allow-Methods"] = "POST, OPTIONS"
            response["Access-Control-Allow-Headers"] = "Content-Type"
            response["Access-Control-Max-Age"] = "86400"
    return response


def _error(request, status: int, message: str, field: str = ""):
    body = {"error": message}
    if field:
        body["field"] = field
    return _cors(JsonResponse(body, status=status), request)


@lean_endpoint
@csrf_exempt
def hit(request):
    """POST a page view: a JSON object (sent as text/plain by navigator.sendBeacon, so no preflight)."""
    if request.method == "OPTIONS":
        return _cors(HttpResponse(status=204), request, preflight=True)
    if request.method != "POST":
        return _error(request, 405, "POST a page view here.")
    if request.content_type not in ACCEPTED_TYPES:
        return _error(request, 415, "Send the page view as text/plain or application/json.")
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > MAX_BODY_BYTES:
        return _error(request, 413, f"A page view is at most {MAX_BODY_BYTES} bytes.")
    body = request.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        return _error(request, 413, f"A page view is at most {MAX_BODY_BYTES} bytes.")
    try:
        payload = json.loads(body)
    except ValueError:
        return _error(request, 400, "The body is not JSON.")
    try:
        hit_accept(payload, client=_client(request))
    except HitRefused as refusal:
        return _error(request, refusal.status, refusal.message, refusal.field)
    except QueueFull:
        return _error(request, 503, "Busy: the page view was not recorded. Try again later.")
    return _cors(HttpResponse(status=204), request)


@lean_endpoint
def pixel(request):
    """GET the no-script pixel: the page is the `u` parameter, else the Referer header."""
    page = request.GET.get("u") or request.headers.get("Referer", "")
    response = HttpResponse(PIXEL, content_type="image/gif")
    response["Cache-Control"] = "no-store"
    if page:
        try:
            hit_accept({"u": page[:2000], "l": 1}, client=_client(request), has_js=False)
        except (HitRefused, QueueFull):
            pass  # an image cannot show an error; the pixel answers the same
    return response
