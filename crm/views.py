import functools
import hmac
from datetime import timedelta
from pathlib import Path

from axes.helpers import get_cool_off
from django.conf import settings
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import cache_control, never_cache
from django.views.decorators.http import require_safe

from .models import WorkerHeartbeat


@never_cache
def healthz(request):
    """Liveness for load balancers and humans: the database answers; workers ticked recently."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    last = WorkerHeartbeat.objects.order_by("-last_seen_at").values_list("last_seen_at", flat=True).first()
    stale_after = timedelta(seconds=settings.CRM_BEAT_TICK_SECONDS * 3)
    workers_ok = bool(last and timezone.now() - last < stale_after)
    return JsonResponse(
        {
            "database": "ok",
            "workers": "ok" if workers_ok else "no recent heartbeat",
            "last_worker_heartbeat": last.isoformat() if last else None,
        }
    )


@never_cache
@require_safe
def metrics(request):
    """/metrics for Prometheus (crm.metrics): only with `Authorization: Bearer <CRM_METRICS_TOKEN>`; without the
    setting, there are no metrics to read (404)."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    from .metrics import CrmCollector

    expected = settings.CRM_METRICS_TOKEN
    if not expected:
        return HttpResponse("Metrics are off: set CRM_METRICS_TOKEN.", status=404, content_type="text/plain")
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(given.encode(), expected.encode()):
        return HttpResponse("Give the metrics token: Authorization: Bearer <CRM_METRICS_TOKEN>.", status=401,
                            content_type="text/plain", headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    registry = CollectorRegistry(auto_describe=False)
    registry.register(CrmCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


@functools.cache
def _favicon() -> bytes:
    return (Path(__file__).resolve().parent / "static" / "crm" / "favicon.ico").read_bytes()


@require_safe
@cache_control(public=True, max_age=86400)
def favicon(request):
    """/favicon.ico, which browsers ask for on every page that names no icon (the admin's, the API's docs): the
    app's icon, never a 404. Pages name the SVG one (crm/favicon.svg)."""
    return HttpResponse(_favicon(), content_type="image/x-icon")


def login_locked_out(request, original_response, credentials):
    """What django-axes answers on either login page once a username and address are locked out."""
    cool_off = get_cool_off(request)
    response = render(
        request,
        "registration/locked_out.html",
        {"retry_at": timezone.now() + cool_off, "cool_off_minutes": round(cool_off.total_seconds() / 60)},
        status=429,
    )
    response["Retry-After"] = str(int(cool_off.total_seconds()))
    return response
