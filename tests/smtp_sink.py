"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives, for tests and benchmarks."""

import email
import logging
import socket
import threading
from email import policy

from aiosmtpd.controller import Controller


class _Collector:
    def __init__(self):
        self.messages = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        with self.lock:
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SmtpSink:
    """Start with `with SmtpSink() as sink:`; `sink.url` is an EMAIL_URL for it."""

    def __init__(self, keep_messages=True):
        self.collector = _Collector()
        self.port = free_port()
        self.controller = Controller(self.collector, hostname="127.0.0.1", port=self.port, ready_timeout=10)

    @property
    def url(self):
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def messages(self):
        with self.collector.lock:
            return list(self.collector.messages)

    def count(self):
        with self.collector.lock:
            return len(self.collector.messages)

    def __enter__(self):
        # aiosmtpd logs every SMTP command at INFO: thousands of lines per test.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()
