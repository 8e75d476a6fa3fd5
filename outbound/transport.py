"""POSTing one webhook: to the address outbound.targets checked, with a short timeout, never following a redirect.

urllib3 (already pinned: requests stands on it) lets us connect to an IP
address while sending the host name as Host, as the TLS server name and as
the name the certificate must match: what pins the connection to the checked
address. A `Sender` keeps one connection pool per (address, port, host) for a
batch, so consecutive deliveries to one receiver reuse its connection.
"""

import time
from dataclasses import dataclass

from .targets import Target

USER_AGENT = "CRM-Webhooks/1.0"


@dataclass(frozen=True)
class Response:
    status: int | None
    excerpt: str
    duration_ms: int
    error: str

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class Sender:
    def __init__(self, *, timeout: float, excerpt_bytes: int):
        # Imported by the first Sender: a worker process that never delivers a webhook does not carry urllib3.
        import urllib3

        self._urllib3 = urllib3
        self.timeout = urllib3.Timeout(connect=timeout, read=timeout)
        self.excerpt_bytes = excerpt_bytes
        self._pools: dict[tuple, urllib3.HTTPConnectionPool] = {}

    def _pool(self, target: Target):
        key = (target.scheme, target.address, target.port, target.host)
        pool = self._pools.get(key)
        if pool is None:
            options = {"host": target.address, "port": target.port, "timeout": self.timeout, "retries": False, "maxsize": 1}
            if target.scheme == "https":
                import certifi

                pool = self._urllib3.HTTPSConnectionPool(
                    **options, server_hostname=target.host, assert_hostname=target.host,
                    cert_reqs="CERT_REQUIRED", ca_certs=certifi.where(),
                )
            else:
                pool = self._urllib3.HTTPConnectionPool(**options)
            self._pools[key] = pool
        return pool

    def post(self, target: Target, *, headers: dict[str, str], body: str) -> Response:
        started = time.monotonic()
        all_headers = {"Host": target.host_header, "Content-Type": "application/json", "User-Agent": USER_AGENT, **headers}
        try:
            response = self._pool(target).urlopen(
                "POST", target.path, body=body.encode(), headers=all_headers, redirect=False, retries=False,
                preload_content=False, assert_same_host=False,
            )
            try:
                excerpt = response.read(self.excerpt_bytes, decode_content=False) or b""
            finally:
                response.release_conn()
        except (self._urllib3.exceptions.HTTPError, OSError) as exc:
            return Response(None, "", _ms(started), _error_text(exc))
        error = ""
        if 300 <= response.status < 400:
            error = f"Redirect to {response.headers.get('Location', '?')[:150]} not followed: give the final URL."
        elif not 200 <= response.status < 300:
            error = f"The receiver answered {response.status}."
        return Response(response.status, excerpt.decode("utf-8", "replace"), _ms(started), error)

    def close(self):
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _error_text(exc: Exception) -> str:
    reason = getattr(exc, "reason", None) or exc
    return f"{type(exc).__name__}: {reason}"[:300]
