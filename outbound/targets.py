"""Where a webhook may go: public addresses only (no SSRF into the CRM's own network).

A URL is checked by resolving its host and refusing it if any address is
private, loopback, link-local, multicast, reserved, unspecified or shared
(carrier-grade NAT), for IPv4 and IPv6, including IPv4 addresses carried
inside IPv6 (`::ffff:127.0.0.1`, 6to4). CRM_WEBHOOKS_ALLOW_PRIVATE_TARGETS
turns the check off (a receiver on the same network, the tests).

Each try resolves again and connects to the address it checked (outbound.transport
sends to that address, with the host name for the Host header and TLS), so a
DNS answer that changes between the check and the connection cannot redirect
it. Redirects are never followed.
"""

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError


class TargetRefused(ValidationError):
    """The URL may not be sent to; the message says why and what to do."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # as written in the URL (for the Host header and TLS)
    port: int
    path: str  # path and query
    address: str  # the checked IP address to connect to

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def _resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def address_problem(address: str) -> str:
    """Why `address` is not public ("" if it is)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.version == 6:
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is not None:
            return address_problem(str(embedded))
    for kind, test in (
        ("unspecified", ip.is_unspecified), ("loopback", ip.is_loopback), ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast), ("private", ip.is_private), ("reserved", ip.is_reserved),
    ):
        if test:
            return kind
    if not ip.is_global:
        return "not public"
    return ""


def target_for(url: str, *, field: str = "url") -> Target:
    """The URL split and its host resolved and checked; TargetRefused (naming `field`) if it may not be sent to."""
    def refuse(message):
        raise TargetRefused({field: message})

    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        refuse("This is not a valid URL.")
    if parts.scheme not in ("http", "https"):
        refuse("Only http:// and https:// URLs can receive webhooks.")
    if not parts.hostname:
        refuse("The URL has no host.")
    if parts.username or parts.password:
        refuse("Put no user name or password in the URL: receivers check the webhook signature instead.")
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = _resolve(parts.hostname, port)
    except (socket.gaierror, UnicodeError) as exc:
        refuse(f"The host {parts.hostname} could not be found ({exc}). Check the address.")
    if not addresses:
        refuse(f"The host {parts.hostname} has no address.")
    if not settings.CRM_WEBHOOKS_ALLOW_PRIVATE_TARGETS:
        for address in addresses:
            problem = address_problem(address)
            if problem:
                refuse(
                    f"{parts.hostname} resolves to {address} ({problem}): webhooks go only to public addresses "
                    "(CRM_WEBHOOKS_ALLOW_PRIVATE_TARGETS allows others)."
                )
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(scheme=parts.scheme, host=parts.hostname, port=port, path=path, address=addresses[0])
