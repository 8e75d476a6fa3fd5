"""/metrics: the numbers to watch and alert on, in Prometheus's text format, read at each scrape.

Each number is one indexed query (or one broker call), so a scrape costs the same at ten million leads as at ten
thousand: counts that could grow without bound are capped (`COUNT_CAP`), rates are read from the event log's
last five minutes by id. What to alert on is in docs/scaling.md.
"""

import time
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Min
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from capture.services import capture_queue
from core.events import EventType
from crm.models import WorkerHeartbeat
from nurturing.models import Delivery, DueDelivery, LaterDelivery
from outbound.models import Delivery as WebhookDelivery
from traffic.queue import hit_queue

COUNT_CAP = 1_000_000
WINDOW = timedelta(minutes=5)
S = Delivery.Status


def _capped_count(queryset) -> int:
    return queryset[:COUNT_CAP].count()


def _age(moment, now) -> float:
    return max(0.0, (now - moment).total_seconds()) if moment else 0.0


def _events_since(since, types) -> int:
    """How many events of `types` were recorded since `since`: the log's ids grow with time, so the window's first
    id is found by reading back from the newest row (cost: the window's rows), then counted on (type, id)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM core_domainevent WHERE recorded_at < %s ORDER BY id DESC LIMIT 1", [since])
        row = cursor.fetchone()
        floor = row[0] if row else 0
        marks = ", ".join(["%s"] * len(types))
        cursor.execute(f"SELECT count(*) FROM core_domainevent WHERE type IN ({marks}) AND id > %s", [*types, floor])
        return cursor.fetchone()[0]


def _gauge(name: str, help_text: str, value: float, labels: dict | None = None) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, help_text, labels=list(labels or {}))
    if labels:
        family.add_metric(list(labels.values()), value)
    else:
        family.add_metric([], value)
    return family


def _broker_depths() -> tuple[bool, dict[str, int]]:
    """Messages waiting in each Celery queue, asked of the broker itself (Redis, RabbitMQ or the filesystem)."""
    from crm.celery import app

    queues = {settings.CELERY_TASK_DEFAULT_QUEUE, settings.CRM_WEBHOOKS_QUEUE, settings.CRM_IMPORTS_QUEUE,
              settings.CRM_SCORING_QUEUE}
    depths = {}
    try:
        with app.connection_for_read() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            channel = conn.default_channel
            for name in sorted(queues):
                try:
                    depths[name] = channel.queue_declare(queue=name, passive=True).message_count
                except Exception:  # not declared yet (no task sent to it): nothing waits there
                    depths[name] = 0
                    channel = conn.channel()
    except Exception:
        return False, depths
    return True, depths


class CrmCollector:
    """Read at each scrape; registered on a registry of its own (no process-wide state to share across workers)."""

    def collect(self):
        started = time.perf_counter()
        now = timezone.now()
        # Both ends of the claim queue: with no dispatcher running, rows come due at the far end too.
        due = DueDelivery.objects.filter(claim_token__isnull=True, due_at__lte=now)
        due_later = LaterDelivery.objects.filter(due_at__lte=now)
        yield _gauge("crm_emails_due", "Deliveries due now and not yet taken by a worker (capped at 1,000,000 each "
                     "end of the queue).", _capped_count(due) + _capped_count(due_later))
        oldest_due = [at for at in (due.aggregate(first=Min("due_at"))["first"],
                                    due_later.aggregate(first=Min("due_at"))["first"]) if at is not None]
        yield _gauge("crm_emails_due_oldest_age_seconds",
                     "How long the oldest due delivery has waited: the engine is behind when this grows.",
                     _age(min(oldest_due, default=None), now))
        claimed = DueDelivery.objects.filter(claim_token__isnull=False)
        sending = Delivery.objects.filter(status=S.SENDING)
        yield _gauge("crm_emails_in_flight", "Deliveries a worker holds (claimed or sending).",
                     _capped_count(claimed) + _capped_count(sending))
        oldest = [at for at in (claimed.aggregate(first=Min("claimed_at"))["first"],
                                sending.aggregate(first=Min("claimed_at"))["first"]) if at is not None]
        yield _gauge("crm_emails_in_flight_oldest_age_seconds",
                     "How long the oldest held delivery has been held; the reaper acts past "
                     "CRM_NURTURE_STALE_AFTER_SECONDS.", _age(min(oldest, default=None), now))
        yield _gauge("crm_emails_unknown", "Deliveries whose outcome was lost (a worker died mid-send): never resent, "
                     "each to be explained.", _capped_count(Delivery.objects.filter(status=S.UNKNOWN)))
        since = now - WINDOW
        sent = _events_since(since, [EventType.EMAIL_SENT])
        failed = Delivery.objects.filter(status=S.FAILED, updated_at__gte=since).count()
        yield _gauge("crm_emails_sent_5m", "Emails handed to the mail server in the last five minutes.", sent)
        yield _gauge("crm_emails_send_rate", "Emails sent per second over the last five minutes.", sent / WINDOW.total_seconds())
        yield _gauge("crm_emails_failed_5m", "Deliveries failed in the last five minutes.", failed)
        yield _gauge("crm_emails_failure_ratio_5m", "Failed among sent and failed in the last five minutes.",
                     failed / (sent + failed) if sent + failed else 0.0)
        bounced = _events_since(since, [EventType.EMAIL_BOUNCED, EventType.EMAIL_COMPLAINED])
        yield _gauge("crm_emails_bounced_or_complained_5m", "Bounces and spam complaints in the last five minutes.",
                     bounced)
        webhooks = WebhookDelivery.objects.filter(next_attempt_at__isnull=False, next_attempt_at__lte=now)
        yield _gauge("crm_webhooks_due", "Outbound webhook deliveries due (first tries and retries).",
                     _capped_count(webhooks))
        yield _gauge("crm_webhooks_due_oldest_age_seconds", "How long the oldest due webhook delivery has waited.",
                     _age(webhooks.aggregate(first=Min("next_attempt_at"))["first"], now))
        for name, queue in (("tracking", hit_queue()), ("capture", capture_queue())):
            if queue is not None:
                yield _gauge("crm_ingest_queue_depth", "Page views and form captures waiting for their worker.",
                             queue.size(), {"queue": name})
        broker_up, depths = _broker_depths()
        yield _gauge("crm_broker_up", "1 when the Celery broker answered this scrape.", 1 if broker_up else 0)
        for name, depth in depths.items():
            yield _gauge("crm_celery_queue_depth", "Tasks waiting in a Celery queue.", depth, {"queue": name})
        last = WorkerHeartbeat.objects.order_by("-last_seen_at").values_list("last_seen_at", flat=True).first()
        yield _gauge("crm_worker_heartbeat_age_seconds", "Since a Celery worker last ran beat's tick.",
                     _age(last, now) if last else float("inf"))
        yield _gauge("crm_metrics_scrape_seconds", "How long this scrape took to read.", time.perf_counter() - started)
