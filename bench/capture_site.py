"""The URLs capture_bench serves: the app's own, and a no-op view to compare the endpoints with.

Only the benchmark's settings point ROOT_URLCONF here; the app never serves /bench/noop.
The no-op view goes through the same middleware as the endpoints (like them, it is
exempt from CSRF) and answers 204 without reading the request.
"""

from django.http import HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from crm.urls import urlpatterns as crm_urlpatterns


@csrf_exempt
def noop(request):
    return HttpResponse(status=204)


urlpatterns = [path("bench/noop", noop, name="bench_noop"), *crm_urlpatterns]
