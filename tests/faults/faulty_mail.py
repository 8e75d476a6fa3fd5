"""Mail servers on loopback that fail on cue: an SMTP server that can be down, answer 4xx or 5xx, or stop answering
once it has a message; and an HTTP server speaking Postmark's API that can answer 429 (with Retry-After) or 5xx.

Both count what they were offered and what they accepted, per delivery (the X-CRM-Delivery header), so a test
can tell an email sent twice from one sent once."""

import asyncio
import collections
import email
import json
import threading
import time
import uuid
from email import policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller

from tests.smtp_sink import SmtpSink


class _Faulty:
    """aiosmtpd handler: `mode` is "ok", "4xx" (451 to RCPT), "hang" (the next DATA is never answered) or a set of
    addresses refused for good (550)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.mode = "ok"
        self.refused_for_good: set[str] = set()
        self.messages = []  # (delivery id, message) accepted with 250
        self.unanswered = []  # delivery ids whose whole message came in and got no answer
        self.rcpt_offers = collections.Counter()
        self.refusals = collections.Counter()
        self.after = None  # (count, callback): called once `count` messages were accepted
        self.hang_seconds = 10.0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self.lock:
            self.rcpt_offers[address] += 1
            if address in self.refused_for_good:
                self.refusals["550"] += 1
                return "550 5.1.1 No such mailbox here"
            if self.mode == "4xx":
                self.refusals["451"] += 1
                return "451 4.3.0 Mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        delivery = message["X-CRM-Delivery"]
        with self.lock:
            hang = self.mode == "hang"
            if hang:
                self.mode = "ok"  # the one message only
                self.unanswered.append(delivery)
        if hang:
            await asyncio.sleep(self.hang_seconds)  # the client has long given up
            return "451 4.3.0 Too late"
        with self.lock:
            self.messages.append((delivery, message))
            after = self.after
            if after and len(self.messages) >= after[0]:
                self.after = None
                threading.Thread(target=after[1], daemon=True).start()
        return "250 OK"


class FaultySmtp(SmtpSink):
    """`with FaultySmtp() as smtp:`; `smtp.down()` closes the port, `smtp.up()` opens it again on the same port."""

    def __init__(self):
        super().__init__()
        self.collector = _Faulty()
        self.controller = Controller(self.collector, hostname="127.0.0.1", port=self.port, ready_timeout=10)
        self.is_up = True

    @property
    def messages(self):
        with self.collector.lock:
            return list(self.collector.messages)

    def count(self):
        with self.collector.lock:
            return len(self.collector.messages)

    def set(self, mode):
        with self.collector.lock:
            self.collector.mode = mode

    def when_accepted(self, count, callback):
        """Run `callback` (in a thread) once `count` messages were accepted: the fault lands mid-run."""
        with self.collector.lock:
            self.collector.after = (count, callback)

    def received(self) -> collections.Counter:
        return collections.Counter(delivery for delivery, _ in self.messages)

    def down(self):
        self.controller.stop()
        self.is_up = False

    def up(self):
        self.controller = Controller(self.collector, hostname="127.0.0.1", port=self.port, ready_timeout=10)
        self.controller.start()
        self.is_up = True

    def __exit__(self, *exc):
        if self.is_up:
            self.controller.stop()


class FakePostmark:
    """Postmark's /email endpoint on loopback: answers each POST by `plan` (a list of (status, Retry-After) used up
    one per request; then 200), in Postmark's own response shapes. Keeps each request's time and delivery id.

    Two statuses answer nothing: "hang" takes the email and does not answer for `hang_seconds` (the client's read
    timeout), "drop" takes it and closes the connection. Both count it as accepted: the provider had it."""

    def __init__(self, plan=(), hang_seconds=3.0):
        self.plan = list(plan)
        self.hang_seconds = hang_seconds
        self.lock = threading.Lock()
        self.requests = []  # (monotonic time, delivery id, status answered)
        self.accepted = {}  # delivery id -> MessageID given
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                headers = {h["Name"]: h["Value"] for h in body.get("Headers", [])}
                delivery = headers.get("X-CRM-Delivery")
                with fake.lock:
                    status, wait = fake.plan.pop(0) if fake.plan else (200, None)
                    fake.requests.append((time.monotonic(), delivery, status))
                    if status in (200, "hang", "drop"):
                        message_id = str(uuid.uuid4())
                        fake.accepted.setdefault(delivery, []).append(message_id)
                if status == "hang":
                    time.sleep(fake.hang_seconds)
                    self.close_connection = True
                    return
                if status == "drop":
                    self.close_connection = True
                    return
                if status == 200:
                    answer = {"To": body["To"], "SubmittedAt": "2026-06-02T10:00:00.0000000Z", "MessageID": message_id,
                              "ErrorCode": 0, "Message": "OK"}
                elif status == 429:
                    answer = {"ErrorCode": 429, "Message": "Rate limit exceeded. Slow down."}
                else:
                    answer = {"ErrorCode": 500, "Message": "Internal server error."}
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if wait is not None:
                    self.send_header("Retry-After", str(wait))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
