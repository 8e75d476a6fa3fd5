"""Claim due deliveries, send them, record what happened: each email at most once.

A delivery moves scheduled -> claimed -> sending -> sent (or skipped/failed),
each move a conditional UPDATE that only the holder of the claim can make:

- `deliveries_claim` takes due rows for one worker task (PostgreSQL: FOR
  UPDATE SKIP LOCKED, so two dispatchers never take the same row; SQLite:
  one writer at a time). A claimed row has not been attempted: if its task
  is lost (broker restart, worker killed before it started), the reaper hands
  it back and it is sent later.
- `deliveries_send` moves a small chunk to `sending` just before handing it to
  the mail server and records the outcome right after. A row left in
  `sending` is one whose outcome was lost with its worker: the reaper marks it
  `unknown`, and it is never sent again.
- When the task's soft time limit strikes while an email is rendered or
  handed to the mail server, the batch stops there: the email being handed
  over is `unknown` at once, the ones not yet tried are `scheduled` again.

Both steps are plain functions, so tests call them directly with frozen time.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import make_msgid

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.mail import get_connection
from django.core.mail.backends.smtp import EmailBackend as SMTPEmailBackend
from django.db import connection as db_connection
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from core.events import Actor
from leads import pipeline
from leads import services as lead_services
from leads.models import Campaign, FormSubmission, Lead

from .address_hash import email_hashes
from .compose import nurture_email, unsubscribe_token, unsubscribe_url
from .models import Delivery, EmailEvent, Enrollment, Sequence, Step, Suppression
from .rendering import StepRenderer, lead_context
from .schedule import lead_zone, next_send_time
from .services import delivery_due_at, delivery_stop_reason, delivery_wait_reason, next_step_after
from .transport import SMTPSender, is_transient

# How many emails go to `sending` at a time: at most this many are `unknown`
# when a worker is killed mid-send.
SEND_CHUNK = 50
# A paused sequence's due deliveries are looked at again after this long.
PAUSED_RECHECK = timedelta(minutes=15)

S = Delivery.Status
LIVE = (Enrollment.Status.ACTIVE, Enrollment.Status.PAUSED)


class TransientSendError(Exception):
    """The provider or the network failed in a way that may pass: retry later."""


# --- Claim -------------------------------------------------------------------------

_CLAIM_SQL = """
UPDATE nurturing_delivery
   SET status = 'claimed', claim_token = %s, claimed_at = %s, attempts = attempts + 1, updated_at = %s
 WHERE id IN (
       SELECT id FROM nurturing_delivery
        WHERE status = 'scheduled' AND due_at <= %s
        ORDER BY due_at
        LIMIT %s)
RETURNING id
"""

# PostgreSQL: the rows are picked and locked (SKIP LOCKED: two dispatchers never take
# the same row) and updated by their physical address, with no second index lookup.
_CLAIM_SQL_POSTGRESQL = """
WITH picked AS (
     SELECT ctid FROM nurturing_delivery
      WHERE status = 'scheduled' AND due_at <= %s
      ORDER BY due_at
      LIMIT %s
        FOR UPDATE SKIP LOCKED)
UPDATE nurturing_delivery
   SET status = 'claimed', claim_token = %s, claimed_at = %s, attempts = attempts + 1, updated_at = %s
 WHERE ctid = ANY(ARRAY(SELECT ctid FROM picked))
RETURNING id
"""


def deliveries_claim(*, limit: int, now: datetime | None = None) -> tuple[uuid.UUID, list[int]]:
    """Claim up to `limit` due deliveries for one worker task; returns the claim token and the ids."""
    now = now or timezone.now()
    token = uuid.uuid4()
    # Parameters in the form the ORM stores them (SQLite keeps UUIDs as hex, datetimes as naive UTC text).
    token_param = Delivery._meta.get_field("claim_token").get_db_prep_value(token, db_connection)
    at = db_connection.ops.adapt_datetimefield_value(now)
    with transaction.atomic(), db_connection.cursor() as cursor:
        if db_connection.vendor == "postgresql":
            # A claim lost in a database crash leaves its rows scheduled: the worker
            # finds them not claimed and sends nothing, and they are claimed again.
            # So the claim need not wait for its commit to reach the disk.
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
            cursor.execute(_CLAIM_SQL_POSTGRESQL, [at, limit, token_param, at, at])
        else:
            cursor.execute(_CLAIM_SQL, [token_param, at, at, at, limit])
        ids = sorted(row[0] for row in cursor.fetchall())
    return token, ids


def deliveries_reap(*, now: datetime | None = None, stale_after: timedelta | None = None) -> tuple[int, int]:
    """Deal with rows a lost worker held: hand back the never-started, mark the in-flight unknown."""
    now = now or timezone.now()
    if stale_after is None:
        stale_after = timedelta(seconds=settings.CRM_NURTURE_STALE_AFTER_SECONDS)
    cutoff = now - stale_after
    handed_back = Delivery.objects.filter(status=S.CLAIMED, claimed_at__lt=cutoff).update(
        status=S.SCHEDULED, claim_token=None, claimed_at=None, updated_at=now,
        reason="Handed back: the worker that claimed it never started it.",
    )
    unknown = Delivery.objects.filter(status=S.SENDING, claimed_at__lt=cutoff).update(
        status=S.UNKNOWN, updated_at=now,
        reason="The worker was lost while sending: it may or may not have gone out, so it is not sent again.",
    )
    return handed_back, unknown


# --- Send ----------------------------------------------------------------------------


@dataclass
class BatchResult:
    sent: int = 0
    skipped: int = 0
    failed: int = 0
    rescheduled: int = 0
    taken_by_others: int = 0


def _sender_for(enrollment: Enrollment, lead):
    return enrollment.sequence.sender or lead.owner


# The relations a batch attaches to its rows (see _Batch._attach_shared).
_DELIVERY_STEP = Delivery._meta.get_field("step")
_ENROLLMENT_SEQUENCE = Enrollment._meta.get_field("sequence")
_SEQUENCE_SENDER = Sequence._meta.get_field("sender")
_LEAD_OWNER = Lead._meta.get_field("owner")
_LEAD_CAMPAIGN = Lead._meta.get_field("campaign")


class _Batch:
    """One worker task's claimed deliveries, loaded once, checked, sent, recorded."""

    def __init__(self, ids, token, now, connection):
        self.token = token
        self.now = now
        self.connection = connection
        self.result = BatchResult()
        self.renderer = StepRenderer()
        self.next_steps: dict[int, Step | None] = {}
        self.rows = list(
            Delivery.objects.filter(pk__in=ids, status=S.CLAIMED, claim_token=token).select_related("enrollment__lead__company")
        )
        self._attach_shared()
        self.result.taken_by_others = len(ids) - len(self.rows)

    def _attach_shared(self):
        """Each row's step, sequence (and its sender), and its lead's owner and campaign.

        A batch has few of each: they are loaded once and shared by the rows,
        not joined into every row (a step's templates would be read 200 times
        over, and made into 200 objects). As select_related does, only the
        relation's cache is set, and a missing row reads as None.
        """
        rows = self.rows
        if not rows:
            return
        steps = Step.objects.in_bulk({d.step_id for d in rows})
        sequences = Sequence.objects.in_bulk({d.enrollment.sequence_id for d in rows})
        user_ids = {s.sender_id for s in sequences.values()} | {d.enrollment.lead.owner_id for d in rows}
        users = get_user_model().objects.in_bulk(user_ids - {None})
        campaign_ids = {d.enrollment.lead.campaign_id for d in rows} - {None}
        campaigns = Campaign.objects.in_bulk(campaign_ids) if campaign_ids else {}
        for sequence in sequences.values():
            _SEQUENCE_SENDER.set_cached_value(sequence, users.get(sequence.sender_id))
        for d in rows:
            _DELIVERY_STEP.set_cached_value(d, steps.get(d.step_id))
            _ENROLLMENT_SEQUENCE.set_cached_value(d.enrollment, sequences.get(d.enrollment.sequence_id))
            lead = d.enrollment.lead
            _LEAD_OWNER.set_cached_value(lead, users.get(lead.owner_id))
            _LEAD_CAMPAIGN.set_cached_value(lead, campaigns.get(lead.campaign_id))

    # -- checks ----------------------------------------------------------------

    def _suppressed(self, rows=None):
        """The normalized addresses of `rows` (default: the batch) that are suppressed now."""
        addresses = {lead_services.normalize_email(d.enrollment.lead.email) for d in (self.rows if rows is None else rows)}
        by_hash = {h: address for address in addresses - {""} for h in email_hashes(address)}
        return {by_hash[h] for h in Suppression.objects.filter(email_hash__in=by_hash).values_list("email_hash", flat=True)}

    def _sent_today(self):
        day_start = timezone.localtime(self.now).replace(hour=0, minute=0, second=0, microsecond=0)
        pairs = {(d.enrollment.sequence_id, getattr(_sender_for(d.enrollment, d.enrollment.lead), "pk", None)) for d in self.rows}
        counts = (
            Delivery.objects.filter(
                status=S.SENT,
                sent_at__gte=day_start,
                enrollment__sequence_id__in={p[0] for p in pairs},
                sender_id__in={p[1] for p in pairs if p[1] is not None},
            )
            .values_list("enrollment__sequence_id", "sender_id")
            .annotate(n=Count("id"))
        )
        return {(seq, sender): n for seq, sender, n in counts}

    def _conditions(self):
        """For the rows whose step has a condition: the engagement it needs to know about (two queries at most)."""
        conditional = [d for d in self.rows if d.step.condition != Step.Condition.ALWAYS]
        engaged, downloaded = set(), set()
        if conditional:
            engaged = set(
                EmailEvent.objects.filter(
                    delivery__enrollment_id__in={d.enrollment_id for d in conditional},
                    kind__in=[EmailEvent.Kind.REPLIED, EmailEvent.Kind.CLICKED], is_machine=False,
                ).values_list("delivery__enrollment_id", "kind")
            )
            resources = {d.step.condition_resource_id for d in conditional if d.step.condition_resource_id}
            if resources:
                downloaded = set(
                    FormSubmission.objects.filter(
                        lead_id__in={d.enrollment.lead_id for d in conditional}, resource_id__in=resources
                    ).values_list("lead_id", "resource_id")
                )
        return engaged, downloaded

    @staticmethod
    def _unmet(d, engaged, downloaded) -> str | None:
        step, C = d.step, Step.Condition
        if step.condition == C.NO_REPLY and (d.enrollment_id, EmailEvent.Kind.REPLIED) in engaged:
            return "an earlier email got a reply"
        if step.condition == C.HUMAN_CLICK and (d.enrollment_id, EmailEvent.Kind.CLICKED) not in engaged:
            return "no earlier email got a click from a person"
        if step.condition == C.DOWNLOADED and (d.enrollment.lead_id, step.condition_resource_id) not in downloaded:
            return f"the lead has not downloaded {step.condition_resource or 'the resource'}"
        return None

    def sort(self):
        """Split the batch into what goes now, what waits, and what never goes."""
        suppressed = self._suppressed()
        sent_today = self._sent_today()
        engaged, downloaded = self._conditions()
        self.skips, self.exits, self.waits, self.emails, self.calls = [], [], [], [], []
        self.passed_over = []
        for d in self.rows:
            enrollment, step, lead = d.enrollment, d.step, d.enrollment.lead
            sequence = enrollment.sequence
            is_suppressed = lead_services.normalize_email(lead.email) in suppressed
            stop = delivery_stop_reason(enrollment=enrollment, sequence=sequence, step=step, lead=lead, suppressed=is_suppressed)
            if stop:
                self.skips.append((d, stop))
                if step.is_active and enrollment.status in LIVE:
                    self.exits.append((enrollment, stop))
                continue
            wait = delivery_wait_reason(enrollment=enrollment, sequence=sequence)
            if wait:
                self.waits.append((d, self.now + PAUSED_RECHECK, f"Waiting: {wait}."))
                continue
            unmet = self._unmet(d, engaged, downloaded)
            if unmet:
                # Logged and passed over: the lead goes on to the next step.
                self.skips.append((d, f"condition not met ({unmet})"))
                self.passed_over.append(d)
                continue
            zone = lead_zone(lead.timezone)
            window = dict(zone=zone, days=step.send_days, start=step.window_start, end=step.window_end)
            allowed = next_send_time(self.now, **window)
            if allowed != self.now:
                self.waits.append((d, allowed, "Moved to the next send window (outside the step's days or hours in the lead's time zone)."))
                continue
            sender = _sender_for(enrollment, lead)
            key = (sequence.pk, getattr(sender, "pk", None))
            if sender is not None and sent_today.get(key, 0) >= sequence.daily_cap_per_sender:
                tomorrow = timezone.localtime(self.now, zone).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
                self.waits.append((d, next_send_time(tomorrow, **window), f"Moved to the next day: the daily cap of {sequence.daily_cap_per_sender} for this sender was reached."))
                continue
            sent_today[key] = sent_today.get(key, 0) + 1
            d.sender_user = sender
            (self.calls if step.kind == Step.Kind.CALL_TASK else self.emails).append(d)

    # -- writes --------------------------------------------------------------------

    def record_skips(self):
        for d, reason in self.skips:
            d.status, d.reason, d.updated_at = S.SKIPPED, f"Skipped: {reason}."[:500], self.now
        if self.skips:
            Delivery.objects.bulk_update([d for d, _ in self.skips], ["status", "reason", "updated_at"])
        for enrollment, reason in self.exits:
            Enrollment.objects.filter(pk=enrollment.pk, status__in=LIVE).update(
                status=Enrollment.Status.EXITED, exit_reason=reason[:300], finished_at=self.now
            )
        # A switched-off step, or one whose condition is not met, is passed over: the lead goes on to the next one.
        switched_off = [d for d, _ in self.skips if not d.step.is_active and d.enrollment.status == Enrollment.Status.ACTIVE]
        self._schedule_next(switched_off + self.passed_over)
        self.result.skipped += len(self.skips)
        for d, due_at, reason in self.waits:
            d.status, d.due_at, d.reason, d.claim_token, d.claimed_at, d.updated_at = S.SCHEDULED, due_at, reason, None, None, self.now
        if self.waits:
            Delivery.objects.bulk_update(
                [d for d, _, _ in self.waits], ["status", "due_at", "reason", "claim_token", "claimed_at", "updated_at"]
            )
        self.result.rescheduled += len(self.waits)

    def _next_step(self, step):
        if step.pk not in self.next_steps:
            self.next_steps[step.pk] = next_step_after(step)
        return self.next_steps[step.pk]

    def _schedule_next(self, done):
        """After a step went (or was passed over): create the next step's delivery, or complete the enrollment."""
        new, completed = [], []
        for d in done:
            nxt = self._next_step(d.step)
            if nxt is None:
                completed.append(d.enrollment_id)
            else:
                after = d.sent_at or self.now
                new.append(
                    Delivery(enrollment_id=d.enrollment_id, step=nxt, due_at=delivery_due_at(step=nxt, lead=d.enrollment.lead, after=after))
                )
        if new:
            Delivery.objects.bulk_create(new, ignore_conflicts=True)
        if completed:
            Enrollment.objects.filter(pk__in=completed, status=Enrollment.Status.ACTIVE).update(
                status=Enrollment.Status.COMPLETED, finished_at=self.now
            )

    def _start(self, chunk):
        """Move a chunk from claimed to sending; returns the rows this task still holds.

        Each row gets its Message-ID here, before anything is sent: an event
        that comes back at once (a bounce, a reply) finds its delivery.
        """
        if not chunk:
            return chunk
        ids = [d.pk for d in chunk]
        for d in chunk:
            d.message_id = make_msgid(domain=settings.CRM_MESSAGE_ID_DOMAIN) if d.step.kind == Step.Kind.EMAIL else ""
        now = db_connection.ops.adapt_datetimefield_value(timezone.now())
        token = Delivery._meta.get_field("claim_token").get_db_prep_value(self.token, db_connection)
        # One statement for the chunk, each row with its own Message-ID (a UNION ALL list:
        # SQLite cannot name the columns of a VALUES list).
        # Not mutated: SQL keywords are case-blind, so changing their case changes nothing.
        rows = " UNION ALL ".join(["SELECT CAST(%s AS bigint) AS id, %s AS message_id"] * len(chunk))  # pragma: no mutate
        params = [p for d in chunk for p in (d.pk, d.message_id)]
        with db_connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {Delivery._meta.db_table} SET status = %s, message_id = v.message_id, claimed_at = %s, updated_at = %s "
                f"FROM ({rows}) AS v "
                f"WHERE {Delivery._meta.db_table}.id = v.id AND status = %s AND claim_token = %s",
                [S.SENDING, now, now, *params, S.CLAIMED, token],
            )
            moved = cursor.rowcount
        if moved == len(chunk):
            return chunk
        held = set(Delivery.objects.filter(pk__in=ids, status=S.SENDING, claim_token=self.token).values_list("pk", flat=True))
        self.result.taken_by_others += len(chunk) - len(held)
        return [d for d in chunk if d.pk in held]

    def _message(self, d):
        lead, step = d.enrollment.lead, d.step
        sender = d.sender_user
        token = unsubscribe_token(lead_id=lead.pk, email=lead.email, delivery_id=d.pk)
        rendered = self.renderer.render(step, lead_context(lead, sender=sender, unsubscribe_url=unsubscribe_url(token)))
        message_id = d.message_id  # given in _start
        message, final = nurture_email(
            rendered=rendered, token=token, sender=sender, to=lead.email, message_id=message_id,
            headers={"X-CRM-Delivery": str(d.pk)}, connection=self.connection,
        )
        d.to_email, d.subject, d.body_text, d.body_html, d.message_id = lead.email, final.subject, final.text, final.html, message_id
        return message

    def send_emails(self):
        if type(self.connection) is SMTPEmailBackend:
            send = SMTPSender(self.connection).send
        else:
            def send(message):
                self.connection.send_messages([message])

        pending = list(self.emails)
        while pending:
            chunk, pending = pending[:SEND_CHUNK], pending[SEND_CHUNK:]
            chunk = self._start(self._drop_suppressed_since(chunk))
            sent, failed = [], []
            try:
                for index, d in enumerate(chunk):
                    try:
                        message = self._message(d)
                    except SoftTimeLimitExceeded:
                        self._out_of_time(untried=chunk[index:] + pending)
                        raise
                    except Exception as exc:  # a template that breaks on this lead's data
                        failed.append((d, f"Could not render: {exc}"))
                        continue
                    try:
                        send(message)
                    except SoftTimeLimitExceeded:
                        self._out_of_time(untried=chunk[index + 1:] + pending, in_flight=d)
                        raise
                    except Exception as exc:
                        if is_transient(exc):
                            # Not sent: this one and the rest go back to `claimed` for the retry.
                            self._hand_back(chunk[index:] + pending)
                            raise TransientSendError(str(exc)) from exc
                        failed.append((d, f"Refused by the mail provider: {exc}"))
                        continue
                    d.sent_at = timezone.now()
                    status = getattr(message, "anymail_status", None)  # an ESP's own id for the message
                    d.provider_message_id = (getattr(status, "message_id", None) or "")[:300]
                    sent.append(d)
            finally:
                self._record(sent, failed)

    def _drop_suppressed_since(self, chunk):
        """Asked again right before sending: an address suppressed since the batch was sorted gets nothing."""
        late = self._suppressed(chunk)
        if not late:
            return chunk
        stopped = [d for d in chunk if lead_services.normalize_email(d.enrollment.lead.email) in late]
        reason = "Skipped: the address was suppressed just before sending."
        Delivery.objects.filter(pk__in=[d.pk for d in stopped], status=S.CLAIMED, claim_token=self.token).update(
            status=S.SKIPPED, reason=reason, updated_at=timezone.now()
        )
        Enrollment.objects.filter(pk__in=[d.enrollment_id for d in stopped], status__in=LIVE).update(
            status=Enrollment.Status.EXITED, exit_reason="The address is suppressed", finished_at=self.now
        )
        self.result.skipped += len(stopped)
        return [d for d in chunk if d not in stopped]

    def _out_of_time(self, *, untried, in_flight=None):
        """The task's soft time limit struck: what may have gone is unknown, what was not tried is scheduled again."""
        now = timezone.now()
        if in_flight is not None:
            Delivery.objects.filter(pk=in_flight.pk, status=S.SENDING, claim_token=self.token).update(
                status=S.UNKNOWN, updated_at=now,
                reason="The batch ran out of time while handing it to the mail server: it may or may not have gone out, "
                       "so it is not sent again.",
            )
        Delivery.objects.filter(
            pk__in=[d.pk for d in untried], status__in=[S.CLAIMED, S.SENDING], claim_token=self.token
        ).update(
            status=S.SCHEDULED, claim_token=None, claimed_at=None, updated_at=now,
            reason="Handed back: its batch ran out of time before trying it.",
        )

    def _hand_back(self, rows):
        ids = [d.pk for d in rows]
        Delivery.objects.filter(pk__in=ids, claim_token=self.token, status__in=[S.SENDING, S.CLAIMED]).update(
            status=S.CLAIMED, updated_at=timezone.now()
        )

    def _record(self, sent, failed):
        # One transaction: a sent email is never recorded without its next step (a
        # crash in between leaves the rows `sending`, for the reaper to mark unknown).
        now = timezone.now()
        for d in sent:
            d.status, d.sender, d.reason, d.updated_at = S.SENT, d.sender_user, "", now
        for d, reason in failed:
            d.status, d.reason, d.updated_at = S.FAILED, reason[:500], now
        with transaction.atomic():
            if sent or failed:
                _write_outcomes(sent + [d for d, _ in failed])
            if sent:
                self._schedule_next(sent)
                self._stage_actions(sent)
        self.result.sent += len(sent)
        self.result.failed += len(failed)

    def _stage_actions(self, sent):
        for d in sent:
            target = d.step.stage_action
            lead = d.enrollment.lead
            if not target or lead.status == target or not pipeline.is_move_allowed(lead.status, target):
                continue
            actor = f"sequence {d.enrollment.sequence.name} step {d.step.position}"
            try:
                lead_services.lead_change_stage(
                    lead=lead, to_status=target, actor=actor, reason=f"{actor}: email sent",
                    source=Actor.sequence(sequence_id=d.enrollment.sequence_id, step_id=d.step_id),
                )
            except ValidationError as exc:
                Delivery.objects.filter(pk=d.pk).update(reason=f"Stage action not applied: {' '.join(exc.messages)}"[:500])

    def create_call_tasks(self):
        done, failed = [], []
        for d in self._start(self.calls):
            lead = d.enrollment.lead
            if lead.owner is None:
                failed.append((d, "No owner to call the lead: assign a rep."))
                continue
            try:
                lead_services.task_create(
                    assignee=lead.owner,
                    lead=lead,
                    title=f"Call {lead} ({d.enrollment.sequence.name}, step {d.step.position})",
                    due_at=self.now,
                    allow_past_due=True,
                )
            except ValidationError as exc:
                failed.append((d, f"Could not create the call task: {' '.join(exc.messages)}"))
                continue
            d.sent_at = timezone.now()
            done.append(d)
        self._record(done, failed)


_OUTCOME_FIELDS = (
    "status", "sent_at", "sender_id", "to_email", "subject", "body_text", "body_html", "message_id", "provider_message_id",
    "reason", "updated_at",
)


def _write_outcomes(rows):
    """Record sent/failed rows in one round trip: an UPDATE per row, sent with executemany.

    (Django's bulk_update builds a CASE expression per row and field: at 200
    rows it cost more than sending the emails.)
    """
    table = Delivery._meta.db_table
    assignments = ", ".join(f"{field} = %s" for field in _OUTCOME_FIELDS)
    sql = f"UPDATE {table} SET {assignments} WHERE id = %s"
    fields = [Delivery._meta.get_field(name) for name in _OUTCOME_FIELDS]  # get_field knows "sender_id" too
    params = [
        [field.get_db_prep_value(getattr(row, field.attname), db_connection) for field in fields] + [row.pk]
        for row in rows
    ]
    with db_connection.cursor() as cursor:
        cursor.executemany(sql, params)


def deliveries_send(*, ids, token, connection=None, now: datetime | None = None) -> BatchResult:
    """Send the claimed deliveries `ids` held under `token`, over one connection.

    Safe to run twice: only rows still claimed under the token are looked at.
    Raises TransientSendError (after handing the unsent rows back to
    `claimed`) when the provider fails in a way that may pass, and the task's
    SoftTimeLimitExceeded after recording where the batch stopped.
    """
    token = uuid.UUID(str(token))
    batch = _Batch(ids, token, now or timezone.now(), connection or get_connection())
    if not batch.rows:
        return batch.result
    batch.sort()
    with transaction.atomic():
        batch.record_skips()
    batch.create_call_tasks()
    if batch.emails:
        batch.connection.open()
        try:
            batch.send_emails()
        finally:
            batch.connection.close()
    return batch.result
