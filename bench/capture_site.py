"""The URLs capture_bench serves: the app's own, and a no-op view to compare the endpoints with.

Only the benchmark's settings point ROOT_URLCONF here; the app never serves /bench/noop.
The no-op view goes through the whole middleware (exempt from CSRF, like the
endpoints) and answers 204 without reading the request; the lean no-op does the
same on the short way the endpoints take (core.middleware.LeanEndpointMiddleware).
"""

from django.http import HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from core.middleware import lean_endpoint
from crm.urls import urlpatterns as crm_urlpatterns


@csrf_exempt
def noop(request):
    return HttpResponse(status=204)


@lean_endpoint
@csrf_exempt
def lean_noop(request):
    return HttpResponse(status=204)


urlpatterns = [
    path("bench/noop", noop, name="bench_noop"),
    # Under /t/, a lean path (CRM_LEAN_PATH_PREFIXES): the no-op on the endpoints' short way through the middleware.
    path("t/bench-noop", lean_noop, name="bench_lean_noop"),
    *crm_urlpatterns,
]
