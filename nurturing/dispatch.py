"""Send a claimed batch and record what happened: each email at most once.

A delivery moves scheduled -> sending -> sent (or skipped/failed), each move a
conditional UPDATE that only the holder of the claim can make; the claim
itself is kept in the narrow claim queue (nurturing.models.DueDelivery).
The work is split by concern:

- nurturing.claim: `deliveries_claim` takes due queue rows for one worker task,
  `deliveries_reap` deals with what a lost worker held;
- nurturing.send_policy: what each claimed row does now (go, wait, be passed
  over, never go), read in a few queries for the whole batch;
- nurturing.transport: handing a message to the SMTP server;
- nurturing.variants: which variant of a step's A/B test each email is rendered
  from, drawn once per lead and step and recorded before anything is sent;
- here, `deliveries_send`: it records the plan, moves a small chunk to
  `sending` just before handing it to the mail server and records the
  outcome right after, with its effects (the next step, the step's stage
  action, the `email.sent` event) in the same transaction. A row left in
  `sending` is one whose outcome was lost with its worker: the reaper marks
  it `unknown`, and it is never sent again.
- When the task's soft time limit strikes while an email is rendered or
  handed to the mail server, the batch stops there: the email being handed
  over is `unknown` at once, the ones not yet tried are `scheduled` again.

These are plain functions, so tests call them directly with frozen time.
"""

import smtplib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import make_msgid

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.mail import get_connection
from django.core.mail.backends.smtp import EmailBackend as SMTPEmailBackend
from django.db import connection as db_connection
from django.db import transaction
from django.db.models import Exists, Max, OuterRef, Q
from django.utils import timezone

from core.emails import normalize_email
from core.events import Actor, EventType, events_record_each
from core.inserts import rows_insert
from leads import services as lead_services
from leads.models import Campaign, Lead

from .claim import NOT_SENT_YET, claims_renew
from .compose import nurture_email, unsubscribe_token, unsubscribe_url
from .content_library import BatchContent
from .models import Delivery, DueDelivery, Enrollment, Sequence, SequenceVersion, Step, StepVariant
from .rendering import StepRenderer, latest_resources, lead_context
from .send_policy import LIVE, plan_sends, suppressed_addresses
from .services import delivery_due_at, next_step_after
from .transport import OutcomeUnknown, SMTPSender, is_transient, provider_outcome_unknown, retry_after
from .variants import variants_assign

S = Delivery.Status


class TransientSendError(Exception):
    """The provider or the network failed in a way that may pass: retry later (no sooner than `retry_after`
    seconds, when the provider said so)."""

    def __init__(self, message, *, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class BatchResult:
    sent: int = 0
    skipped: int = 0
    failed: int = 0
    rescheduled: int = 0
    # Rows no longer claimed under this batch's token when it looked (a task
    # delivered twice finds its rows sent by the first, or handed back by the reaper).
    taken_by_others: int = 0


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
        self.resources = {}
        self.content = BatchContent()
        self.versions: dict[int, int] = {}
        self.variants: dict[int, StepVariant | None] = {}  # delivery id -> the variant of its step's A/B test
        self.rows = list(
            Delivery.objects.filter(pk__in=ids, status=S.SCHEDULED, queued__claim_token=token)
            .select_related("enrollment__lead__company")
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
        # Whether each step has variants rides on the steps' query: a batch of steps without A/B tests reads no more.
        steps = Step.objects.annotate(has_variants=Exists(StepVariant.objects.filter(step=OuterRef("pk")))).in_bulk(
            {d.step_id for d in rows})
        sequences = Sequence.objects.in_bulk({d.enrollment.sequence_id for d in rows})
        user_ids = {s.sender_id for s in sequences.values()} | {d.enrollment.lead.owner_id for d in rows}
        users = get_user_model().objects.in_bulk(user_ids - {None})
        campaign_ids = {d.enrollment.lead.campaign_id for d in rows} - {None}
        campaigns = Campaign.objects.in_bulk(campaign_ids) if campaign_ids else {}
        for sequence in sequences.values():
            _SEQUENCE_SENDER.set_cached_value(sequence, users.get(sequence.sender_id))
        self.resources = latest_resources({d.enrollment.lead_id for d in rows})
        # The content library (and the leads' open objections), only if a step writes a block: a query or two.
        self.content = BatchContent.load(steps=steps.values(), lead_ids={d.enrollment.lead_id for d in rows})
        # Each sequence's latest version: the steps just loaded are its content (a change makes a new one).
        self.versions = dict(SequenceVersion.objects.filter(sequence_id__in=sequences).order_by()
                             .values_list("sequence_id").annotate(latest=Max("pk")))
        for d in rows:
            _DELIVERY_STEP.set_cached_value(d, steps.get(d.step_id))
            _ENROLLMENT_SEQUENCE.set_cached_value(d.enrollment, sequences.get(d.enrollment.sequence_id))
            lead = d.enrollment.lead
            _LEAD_OWNER.set_cached_value(lead, users.get(lead.owner_id))
            _LEAD_CAMPAIGN.set_cached_value(lead, campaigns.get(lead.campaign_id))

    def sort(self):
        """Split the batch into what goes now, what waits, and what never goes (nurturing.send_policy)."""
        plan = plan_sends(self.rows, self.now)
        self.skips, self.exits, self.waits = plan.skips, plan.exits, plan.waits
        self.passed_over, self.emails, self.calls = plan.passed_over, plan.emails, plan.calls

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
        # Moved to a later time: the claim queue takes the new due time and drops this task's claim (its trigger).
        for d, due_at, reason in self.waits:
            d.status, d.due_at, d.reason, d.updated_at = S.SCHEDULED, due_at, reason, self.now
        if self.waits:
            Delivery.objects.bulk_update([d for d, _, _ in self.waits], ["status", "due_at", "reason", "updated_at"])
        self.result.rescheduled += len(self.waits)

    def assign_variants(self):
        """Each email's variant, for the steps with an A/B test: drawn and recorded before anything is sent, so a
        retry of the batch renders the same one. Three queries for the whole batch, none without a test."""
        tested = {d.step_id: d.step for d in self.emails if d.step.has_variants}
        if not tested:
            return
        variants: dict[int, list] = {}
        for variant in StepVariant.objects.filter(step_id__in=tested):
            variants.setdefault(variant.step_id, []).append(variant)
        chosen = variants_assign(
            [(d.enrollment_id, d.step_id) for d in self.emails if d.step_id in tested], variants=variants,
            winners={step_id: step.winner_id for step_id, step in tested.items()},
        )
        self.variants = {d.pk: chosen.get((d.enrollment_id, d.step_id)) for d in self.emails}

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
                new.append({"enrollment_id": d.enrollment_id, "step_id": nxt.pk,
                            "due_at": delivery_due_at(step=nxt, lead=d.enrollment.lead, after=after)})
        if new:
            rows_insert(Delivery, new, ignore_conflicts=True)
        if completed:
            Enrollment.objects.filter(pk__in=completed, status=Enrollment.Status.ACTIVE).update(
                status=Enrollment.Status.COMPLETED, finished_at=self.now
            )

    def _start(self, chunk):
        """Move a chunk from claimed (in the claim queue) to sending; returns the rows this task still holds.

        Each row gets its Message-ID here, before anything is sent: an event
        that comes back at once (a bounce, a reply) finds its delivery. The
        claim's token moves onto the row, and its queue row goes (the trigger).
        """
        if not chunk:
            return chunk
        ids = [d.pk for d in chunk]
        for d in chunk:
            d.message_id = make_msgid(domain=settings.CRM_MESSAGE_ID_DOMAIN) if d.step.kind == Step.Kind.EMAIL else ""
        now = db_connection.ops.adapt_datetimefield_value(timezone.now())
        token = Delivery._meta.get_field("claim_token").get_db_prep_value(self.token, db_connection)
        table = Delivery._meta.db_table
        # One statement for the chunk, each row with its own Message-ID (a UNION ALL list:
        # SQLite cannot name the columns of a VALUES list).
        # Not mutated: SQL keywords are case-blind, so changing their case changes nothing.
        rows = " UNION ALL ".join(["SELECT CAST(%s AS bigint) AS id, %s AS message_id"] * len(chunk))  # pragma: no mutate
        params = [p for d in chunk for p in (d.pk, d.message_id)]
        with db_connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET status = %s, message_id = v.message_id, claim_token = %s, claimed_at = %s, "
                f"attempts = attempts + 1, updated_at = %s "
                f"FROM ({rows}) AS v "
                f"WHERE {table}.id = v.id AND status = %s AND EXISTS ("
                f"SELECT 1 FROM {DueDelivery._meta.db_table} q WHERE q.delivery_id = v.id AND q.claim_token = %s)",
                [S.SENDING, token, now, now, *params, S.SCHEDULED, token],
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
        context = self.content.add_to(lead_context(
            lead, sender=sender, unsubscribe_url=unsubscribe_url(token), resource=self.resources.get(lead.pk, {}),
        ), lead=lead)
        variant = self.variants.get(d.pk)
        d.variant_id = variant.pk if variant is not None else None
        rendered = self.renderer.render(step, context, variant=variant)
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
                try:
                    self.connection.send_messages([message])
                except Exception as exc:
                    if provider_outcome_unknown(exc):
                        raise OutcomeUnknown(f"The mail provider did not answer once it had the request: {exc}") from exc
                    raise

        pending = list(self.emails)
        # How many emails go to `sending` at a time: at most this many per worker process are `unknown` when it
        # is killed mid-send (most of them never tried); fewer costs more statements per email.
        chunk_size = max(1, settings.CRM_NURTURE_SEND_CHUNK)
        while pending:
            chunk, pending = pending[:chunk_size], pending[chunk_size:]
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
                    except OutcomeUnknown as exc:
                        # Maybe accepted: never sent again. The connection is gone; the rest wait for the retry.
                        self._mark_unknown(d, f"{exc} It may or may not have gone out, so it is not sent again.")
                        self._hand_back(chunk[index + 1:] + pending)
                        raise TransientSendError(str(exc)) from exc
                    except Exception as exc:
                        if is_transient(exc):
                            # Not sent: this one and the rest go back to claimed (this token) for the retry.
                            self._hand_back(chunk[index:] + pending)
                            raise TransientSendError(str(exc), retry_after=retry_after(exc)) from exc
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
        late = suppressed_addresses(chunk)
        if not late:
            return chunk
        stopped = [d for d in chunk if normalize_email(d.enrollment.lead.email) in late]
        reason = "Skipped: the address was suppressed just before sending."
        Delivery.objects.filter(pk__in=[d.pk for d in stopped], status=S.SCHEDULED, queued__claim_token=self.token).update(
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
            self._mark_unknown(in_flight, "The batch ran out of time while handing it to the mail server: it may or "
                                          "may not have gone out, so it is not sent again.")
        # Written as scheduled (again), each goes back into the claim queue unclaimed (its trigger).
        Delivery.objects.filter(
            Q(status=S.SENDING, claim_token=self.token) | Q(status=S.SCHEDULED, queued__claim_token=self.token),
            pk__in=[d.pk for d in untried],
        ).update(
            status=S.SCHEDULED, claim_token=None, claimed_at=None, updated_at=now,
            reason="Handed back: its batch ran out of time before trying it.",
        )

    def _mark_unknown(self, d, reason):
        Delivery.objects.filter(pk=d.pk, status=S.SENDING, claim_token=self.token).update(
            status=S.UNKNOWN, reason=reason[:500], updated_at=timezone.now(),
        )

    def refused_at_connect(self, exc):
        """The mail server refused the connection for good (a failed login, a 5xx greeting): nothing was sent. The
        emails stay claimed, so they are tried again only when the claim goes stale (the reaper hands them back),
        not on every tick; meanwhile each says why it has not gone out."""
        detail = str(exc)
        if isinstance(exc, smtplib.SMTPResponseException):  # its words, not the bytes' repr
            words = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else exc.smtp_error
            detail = f"{exc.smtp_code} {words}"
        reason = (f"{NOT_SENT_YET}the mail server refused the connection ({detail}). Nothing was sent; "
                  "it is tried again when its claim expires. Check the mail settings (EMAIL_URL).")
        Delivery.objects.filter(pk__in=[d.pk for d in self.emails], status=S.SCHEDULED, queued__claim_token=self.token).update(
            reason=reason[:500], updated_at=timezone.now())

    def _hand_back(self, rows):
        """Not sent (a transient failure): the rows started go back to claimed under this task's token, for its
        retry (the ones not started still are)."""
        now = timezone.now()
        with transaction.atomic():
            started = list(Delivery.objects.filter(pk__in=[d.pk for d in rows], claim_token=self.token, status=S.SENDING)
                           .values_list("pk", flat=True))
            if started:
                # Scheduled again (the trigger queues them unclaimed), then claimed again under this token.
                Delivery.objects.filter(pk__in=started).update(
                    status=S.SCHEDULED, claim_token=None, claimed_at=None, updated_at=now)
                claims_renew(started, token=self.token, now=now)

    def _record(self, sent, failed):
        # One transaction: a sent email is never recorded without its next step (a
        # crash in between leaves the rows `sending`, for the reaper to mark unknown).
        now = timezone.now()
        for d in sent:
            d.status, d.sender, d.reason, d.updated_at = S.SENT, d.sender_user, "", now
            d.version_id = self.versions.get(d.enrollment.sequence_id)  # the steps as they were rendered from
        for d, reason in failed:
            d.status, d.reason, d.updated_at = S.FAILED, reason[:500], now
        with transaction.atomic():
            if db_connection.vendor == "postgresql" and (sent or failed):
                # An outcome lost in a database crash (its commit not yet on disk) leaves its rows `sending`:
                # the reaper marks them unknown, never sends them again. So this commit need not wait for
                # the disk (the move to `sending`, which guards against a second send, does).
                with db_connection.cursor() as cursor:
                    cursor.execute("SET LOCAL synchronous_commit TO OFF")
            late = _write_outcomes(sent + [d for d, _ in failed], self.token) if sent or failed else set()
            if late:
                sent, failed = self._late(sent, failed, late, now)
            if sent:
                self._schedule_next(sent)
                sent_events_record([d for d in sent if d.step.kind == Step.Kind.EMAIL])
                self._stage_actions(sent)
        self.result.sent += len(sent)
        self.result.failed += len(failed)

    def _late(self, sent, failed, late, now):
        """Rows this task no longer held when it came to record them: it was paused past the stale time and the
        reaper marked them unknown. They stay unknown (nothing acts on them twice), with what became of them."""
        at = now.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        for rows, what in (([d for d in sent if d.pk in late], f"it handed the email to the mail server at {at}"),
                           ([d for d, _ in failed if d.pk in late], f"the mail server refused the email at {at}")):
            if rows:
                Delivery.objects.filter(pk__in=[d.pk for d in rows], status=S.UNKNOWN).update(
                    reason=f"Its worker stopped answering while sending and it was marked unknown; the worker "
                           f"came back and {what}.", updated_at=now)
        self.result.taken_by_others += len(late)
        return [d for d in sent if d.pk not in late], [(d, reason) for d, reason in failed if d.pk not in late]

    def _stage_actions(self, sent):
        for d in sent:
            target = d.step.stage_action
            if not target:
                continue
            actor = f"sequence {d.enrollment.sequence.name} step {d.step.position}"
            try:
                lead_services.lead_stage_action(
                    lead=d.enrollment.lead, to_status=target, actor=actor, reason=f"{actor}: email sent",
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


def sent_events_record(rows) -> int:
    """An `email.sent` event per email handed to the mail server, its actor the sequence and step.

    Written with the rows' outcomes, in the same transaction (one INSERT for a chunk).
    """
    return events_record_each(
        EventType.EMAIL_SENT,
        rows=(
            {
                "lead_id": d.enrollment.lead_id, "subject_type": "delivery", "subject_id": d.pk,
                "actor": Actor.sequence(sequence_id=d.enrollment.sequence_id, step_id=d.step_id),
                "payload": {"sequence": d.enrollment.sequence_id, "step": d.step_id, "position": d.step.position},
                "at": d.sent_at,
            }
            for d in rows
        ),
    )


_OUTCOME_FIELDS = (
    "status", "sent_at", "sender_id", "to_email", "subject", "body_text", "body_html", "message_id", "provider_message_id",
    "reason", "updated_at", "version_id", "variant_id",
)


def _write_outcomes(rows, token) -> set[int]:
    """Record sent/failed rows in one round trip: an UPDATE per row, sent with executemany, each only while the
    row is still `sending` under `token`. Returns the ids not written (none, unless the reaper took them).

    (Django's bulk_update builds a CASE expression per row and field: at 200
    rows it cost more than sending the emails.)
    """
    table = Delivery._meta.db_table
    assignments = ", ".join(f"{field} = %s" for field in _OUTCOME_FIELDS)
    sql = f"UPDATE {table} SET {assignments} WHERE id = %s AND status = %s AND claim_token = %s"
    fields = [Delivery._meta.get_field(name) for name in _OUTCOME_FIELDS]  # get_field knows "sender_id" too
    held = [S.SENDING, Delivery._meta.get_field("claim_token").get_db_prep_value(token, db_connection)]
    params = [
        [field.get_db_prep_value(getattr(row, field.attname), db_connection) for field in fields] + [row.pk, *held]
        for row in rows
    ]
    with db_connection.cursor() as cursor:
        cursor.executemany(sql, params)
        written = cursor.rowcount
    if written == len(rows):
        return set()
    ids = [row.pk for row in rows]
    return set(Delivery.objects.filter(pk__in=ids).exclude(status__in=[S.SENT, S.FAILED]).values_list("pk", flat=True))


def deliveries_send(*, ids, token, connection=None, now: datetime | None = None) -> BatchResult:
    """Send the claimed deliveries `ids` held under `token`, over one connection.

    Safe to run twice: only rows still claimed under the token are looked at.
    Raises TransientSendError (after handing the unsent rows back to
    claimed, under the same token) when the provider fails in a way that may pass, and the task's
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
        batch.assign_variants()
        try:
            batch.connection.open()
        except Exception as exc:
            if is_transient(exc):  # the server is down or busy (421): nothing was tried, the rows stay claimed
                raise TransientSendError(str(exc), retry_after=retry_after(exc)) from exc
            batch.refused_at_connect(exc)
            raise
        try:
            batch.send_emails()
        finally:
            batch.connection.close()
    return batch.result
