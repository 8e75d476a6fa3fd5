"""What each email provider means by its own words: bounce types, machine opens, event ids, required fields.

anymail turns every provider's webhook into one event shape, but it keeps
some distinctions only in the provider's raw event (`event.esp_event`): a
soft bounce from a hard one, an open made by an image proxy, the provider's
own id for an event. The tables here read those raw fields, one entry per
provider (anymail's `esp_name`), each written from the provider's documented
payloads. A provider missing from a table gets anymail's normalised reading.
"""

import json
from dataclasses import dataclass

from anymail.signals import EventType

from .models import EmailEvent

K = EmailEvent.Kind


@dataclass(frozen=True)
class Outcome:
    """What a provider's event is here: its kind and, for a bounce, hard or soft."""

    kind: str
    bounce: str = ""


HARD = Outcome(K.BOUNCED, EmailEvent.Bounce.HARD)  # the address does not work: suppressed, the lead leaves
SOFT = Outcome(K.BOUNCED, EmailEvent.Bounce.SOFT)  # the address may work later: sent again, repeated ones suppress
DEFERRED = Outcome(K.OTHER)  # the provider keeps trying by itself: logged, nothing else (a final failure comes later)


def dig(raw, path):
    """The value at `path` (keys, one per level) in a provider's raw event, or None."""
    for key in path:
        try:
            raw = raw.get(key)
        except AttributeError:
            return None
    return raw


# Bounce types, per provider: rules read in order, the first whose field holds one of its
# values decides. Each maps the provider's documented values; anything else falls through
# to anymail's normalised event (a BOUNCED event is then hard).
BOUNCES = {
    # SES bounce object: bounceType Permanent (General, NoEmail, Suppressed,
    # OnAccountSuppressionList...), Transient (General, MailboxFull, MessageTooLarge,
    # ContentRejected, AttachmentRejected) or Undetermined (SES could not tell).
    "Amazon SES": [(("bounce", "bounceType"), {"Permanent": HARD, "Transient": SOFT, "Undetermined": SOFT})],
    # Mailgun "failed": severity temporary means Mailgun retries (for up to 8 hours); when
    # it gives up the reason is "old" (the mailbox kept refusing for now, not for good).
    # A full mailbox (SMTP 552) is reported as permanent but is a soft bounce anywhere else.
    # Mailgun also fails messages to addresses on its own suppression lists.
    "Mailgun": [
        (("event-data", "reason"), {
            "old": SOFT, "suppress-unsubscribe": Outcome(K.UNSUBSCRIBED), "suppress-complaint": Outcome(K.COMPLAINED),
        }),
        (("event-data", "delivery-status", "code"), {552: SOFT}),
        (("event-data", "severity"), {"permanent": HARD, "temporary": DEFERRED}),
    ],
    # Postmark bounce Type. Transient is a delay Postmark retries; an auto-responder and a
    # challenge mean the email arrived; blocks, filters and DNS trouble say nothing bad
    # about the address itself.
    "Postmark": [(("Type",), {
        "HardBounce": HARD, "BadEmailAddress": HARD, "ManuallyDeactivated": HARD,
        "SoftBounce": SOFT, "DnsError": SOFT, "Blocked": SOFT, "SpamNotification": SOFT, "DMARCPolicy": SOFT,
        "Transient": DEFERRED, "AutoResponder": Outcome(K.OTHER), "ChallengeVerification": Outcome(K.OTHER),
        "AddressChange": Outcome(K.OTHER), "OpenRelayTest": Outcome(K.OTHER),
    })],
    # SendGrid "bounce" events: type "bounce" (the mailbox refused) or "blocked" (the
    # receiving server refused us, for now); "deferred" events are retries in progress.
    "SendGrid": [
        (("type",), {"bounce": HARD, "blocked": SOFT}),
        (("event",), {"deferred": DEFERRED}),
    ],
    "Brevo": [(("event",), {"hard_bounce": HARD, "invalid_email": HARD, "soft_bounce": SOFT, "deferred": DEFERRED})],
    # Mailjet "bounce": hard_bounce true or false; greylisting is retried by Mailjet.
    "Mailjet": [
        (("hard_bounce",), {True: HARD}),
        (("error",), {"greylisted": DEFERRED}),
        (("hard_bounce",), {False: SOFT}),
    ],
    "MailerSend": [(("data", "type"), {"hard_bounced": HARD, "soft_bounced": SOFT})],
    "Mandrill": [(("event",), {"hard_bounce": HARD, "soft_bounce": SOFT, "deferral": DEFERRED})],
    # SparkPost bounce classes: 10 invalid recipient and 30 no recipient are hard; soft,
    # DNS, mailbox full, too large, timeout, generic, transient (20-24, 40, 70) and the
    # blocks (50-54: the receiving side refused us, not the address) are soft.
    "SparkPost": [(("msys", "message_event", "bounce_class"), {
        "10": HARD, "30": HARD,
        **dict.fromkeys(("20", "21", "22", "23", "24", "40", "70", "50", "51", "52", "53", "54"), SOFT),
    })],
}
BOUNCES["SendinBlue"] = BOUNCES["Brevo"]  # Brevo's former name, still served at /webhooks/sendinblue/

# anymail's normalised reading, for what the table above does not decide.
_KINDS = {
    EventType.DELIVERED: K.DELIVERED,
    EventType.OPENED: K.OPENED,
    EventType.CLICKED: K.CLICKED,
    EventType.BOUNCED: K.BOUNCED,
    EventType.COMPLAINED: K.COMPLAINED,
    EventType.UNSUBSCRIBED: K.UNSUBSCRIBED,
    EventType.REJECTED: K.REJECTED,
    EventType.FAILED: K.REJECTED,
}
_REJECTED_BECAUSE = {"bounced": HARD, "unsubscribed": Outcome(K.UNSUBSCRIBED), "spam": Outcome(K.COMPLAINED)}
IGNORED = {EventType.QUEUED, EventType.SENT}


def _raw(event):
    return event.esp_event if hasattr(event.esp_event, "get") else {}


def _ses_subscription(raw) -> Outcome | None:
    """SES list management ("Subscription" events, which anymail 15.2 reports as unknown).

    We send one kind of email, so opting out of any topic, or of everything,
    is an unsubscribe; a change that only opts in is logged.
    """
    if raw.get("eventType") != "Subscription":
        return None
    new = dig(raw, ("subscription", "newTopicPreferences")) or {}
    topics = new.get("topicSubscriptionStatus") or []
    opted_out = new.get("unsubscribeAll") is True or any(t.get("subscriptionStatus") == "OptOut" for t in topics)
    return Outcome(K.UNSUBSCRIBED) if opted_out else Outcome(K.OTHER)


def tracking_outcome(esp_name: str, event) -> Outcome:
    """The kind (and bounce) of one of anymail's tracking events from `esp_name`."""
    raw = _raw(event)
    for path, values in BOUNCES.get(esp_name, ()):
        value = dig(raw, path)
        if isinstance(value, str | int | bool) and value in values:
            return values[value]
    if esp_name == "Amazon SES" and (subscription := _ses_subscription(raw)):
        return subscription
    if event.event_type == EventType.REJECTED and event.reject_reason in _REJECTED_BECAUSE:
        return _REJECTED_BECAUSE[event.reject_reason]
    kind = _KINDS.get(event.event_type, K.OTHER)
    return HARD if kind == K.BOUNCED else Outcome(kind)


# Opens the provider itself says a machine made (an image proxy or a prefetch), checked
# before our own guesses (nurturing.classify). Mailgun names the proxy in client-info.bot
# ("apple", "gmail"; empty for a person), SendGrid sets sg_machine_open, Brevo has its
# own event names for proxy opens.
MACHINE_OPENS = {
    "Mailgun": (("event-data", "client-info", "bot"), lambda value: bool(value)),
    "SendGrid": (("sg_machine_open",), lambda value: value is True),
    "Brevo": (("event",), lambda value: value in ("unique_proxy_open", "proxy_open")),
}
MACHINE_OPENS["SendinBlue"] = MACHINE_OPENS["Brevo"]


def machine_open_reason(esp_name: str, event) -> str:
    """Why the provider says this open was a machine's, or ""."""
    if event.event_type != EventType.OPENED or esp_name not in MACHINE_OPENS:
        return ""
    path, says_machine = MACHINE_OPENS[esp_name]
    value = dig(_raw(event), path)
    if not says_machine(value):
        return ""
    detail = f" ({value})" if isinstance(value, str) else ""
    return f"{esp_name} reports a machine open{detail}"


def event_id(esp_name: str, event) -> str:
    """The provider's id for an event, the same on every retry of it.

    anymail gives Mailgun's signature token, which is new on each retry;
    Mailgun's own event id is unique within a day, so its timestamp goes with it.
    """
    if esp_name == "Mailgun":
        data = dig(_raw(event), ("event-data",)) or {}
        if data.get("id"):
            return f"{data['id']}@{data.get('timestamp', '')}"
    return event.event_id or ""


# What a provider sends in every tracking event: its type field (one of several paths),
# the recipient, the message's id. An event without one of them is not from that
# provider (or is cut short): the whole post is refused and nothing is recorded.
ALWAYS_SENT = {
    "Amazon SES": ((("eventType",), ("notificationType",)), True, True),
    "Postmark": ((("RecordType",),), True, True),
    "Mailgun": ((("event-data", "event"), ("event",)), True, True),
    "SendGrid": ((("event",),), True, False),
    "Brevo": ((("event",),), True, False),
    "SendinBlue": ((("event",),), True, False),
    "Mailjet": ((("event",),), True, True),
    "MailerSend": ((("data", "type"),), True, True),
    "SparkPost": ((("msys", "message_event", "type"), ("msys", "track_event", "type"),
                   ("msys", "unsubscribe_event", "type"), ("msys", "gen_event", "type")), False, False),
    "Mandrill": ((("event",), ("type",)), False, False),
    "Resend": ((("type",),), False, True),
    "Postal": ((("payload",),), True, True),
    "Mailtrap": ((("event",),), True, True),
    "Unisender Go": ((("status",),), True, False),
}


def tracking_event_problem(esp_name: str, event) -> str:
    """What is missing from a tracking event that its provider always sends, or ""."""
    if esp_name not in ALWAYS_SENT:
        return ""
    type_paths, needs_recipient, needs_message_id = ALWAYS_SENT[esp_name]
    raw = _raw(event)
    if not any(dig(raw, path) for path in type_paths):
        return "no event type"
    if needs_recipient and not event.recipient:
        return "no recipient"
    if needs_message_id and not event.message_id:
        return "no message id"
    return ""


SES_TOPIC_CONFIRMED = "Successfully validated SNS topic for Amazon SES event publishing."


def _sns_without_events(request) -> bool:
    sns = getattr(request, "_sns_message", None) or {}
    return sns.get("Type") in ("SubscriptionConfirmation", "UnsubscribeConfirmation") or (
        sns.get("Message") == SES_TOPIC_CONFIRMED
    )


def _json(request):
    return json.loads(request.body.decode("utf-8"))


def _unisender_other_events(request) -> bool:
    body = _json(request)
    return body.get("event_name", "transactional_email_status") != "transactional_email_status" or bool(
        body.get("events_by_user")
    )


def _mailtrap_example(request) -> bool:
    events = _json(request).get("events")
    return bool(events) and all(
        str(e.get("event", "")).startswith("inbound") and e.get("inbox_id") in (None, 1) for e in events
    )


# Posts that carry no event by design, each documented by its provider: answered 200 with
# nothing recorded. Any other post from which anymail reads no event is malformed.
EMPTY_POSTS = {
    # SNS subscription (un)confirmations, and the notice that an SES topic was validated.
    "Amazon SES": _sns_without_events,
    # SparkPost pings a new webhook with an event that has no class: [{"msys": {}}].
    "SparkPost": lambda request: isinstance(body := _json(request), list) and body and all(i == {"msys": {}} for i in body),
    # Mandrill checks a webhook with an empty batch: mandrill_events=[].
    "Mandrill": lambda request: request.POST.get("mandrill_events", "").strip() == "[]",
    # Unisender Go posts other kinds of events (e.g. spam blocks) that are not about an email's status.
    "Unisender Go": _unisender_other_events,
    # Mailtrap's "Test your integration" sends an example inbound event (inbox 1, or none).
    "Mailtrap": _mailtrap_example,
}


def is_documented_empty_post(esp_name: str, request) -> bool:
    check = EMPTY_POSTS.get(esp_name)
    return bool(check and check(request))


# Verdicts the receiving provider gives on who sent an inbound email, in fields the sender
# cannot write: SES's receipt (dmarcVerdict PASS means the From domain is authenticated,
# aligned by SPF or DKIM) and SendGrid's dkim field ("{@example.com : pass}"), which passes
# only for a signature by the From domain. Authentication-Results headers are not read:
# a sender can put one in the email, and not every provider adds its own above it.
def _ses_dmarc_passes(event, domain: str) -> bool:
    return str(dig(_raw(event), ("receipt", "dmarcVerdict", "status")) or "").upper() == "PASS"


def _sendgrid_dkim_passes(event, domain: str) -> bool:
    post = getattr(event.esp_event, "POST", {})
    results = str(post.get("dkim") or "").strip("{}").split(",")
    return any(
        result.partition(":")[0].strip().lstrip("@").lower() == domain and result.partition(":")[2].strip() == "pass"
        for result in results
    )


SENDER_VERDICTS = {"Amazon SES": _ses_dmarc_passes, "SendGrid": _sendgrid_dkim_passes}


def sender_is_authenticated(esp_name: str, event, sender_address: str) -> bool:
    """The provider vouches that the inbound email comes from its From address's domain."""
    check = SENDER_VERDICTS.get(esp_name)
    domain = sender_address.rpartition("@")[2].lower()
    return bool(check and domain and check(event, domain))
