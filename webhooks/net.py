"""Outbound HTTP for webhooks, safe against server-side request forgery.

A URL must be https (http only where settings.WEBHOOKS_ALLOW_HTTP), carry no credentials, and
resolve only to public addresses: private, loopback, link-local, multicast, reserved and
unspecified addresses are refused unless settings.WEBHOOKS_ALLOWED_NETWORKS names their network
(tests allow 127.0.0.0/8). The check runs when the URL is registered and again at every connect:
the connection goes to the very address that was checked (no second lookup for a DNS rebinding to
use), and redirects are never followed. Free of Django but for its settings.
"""
from __future__ import annotations

import contextlib
import email.utils
import http.client
import ipaddress
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit

from django.conf import settings

MAX_URL = 2000
EXCERPT = 1000


class Refused(Exception):
    """The URL may not be called (permanent): a retry would be refused the same way."""


class Unreachable(Exception):
    """Nothing came back: DNS, connection, TLS or timeout (worth a retry)."""

    def __init__(self, message: str, *, timeout: bool = False) -> None:
        super().__init__(message)
        self.timeout = timeout


@dataclass(frozen=True)
class Answer:
    status: int
    latency_ms: float
    excerpt: str
    retry_after: float | None


def check_url(url: str) -> SplitResult:
    """The URL's parts, if its form is acceptable (scheme, no credentials, a host, a valid port); Refused otherwise."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL or not url.isprintable() or " " in url or not url.isascii():
        raise Refused(f"a webhook URL is printable ASCII without spaces (percent-encode the rest), at most {MAX_URL} characters")
    parts = urlsplit(url)
    allowed = ("https", "http") if settings.WEBHOOKS_ALLOW_HTTP else ("https",)
    if parts.scheme.lower() not in allowed:
        raise Refused("webhook URLs must use https" if not settings.WEBHOOKS_ALLOW_HTTP else "webhook URLs must use http or https")
    if "@" in parts.netloc:
        raise Refused("webhook URLs may not carry credentials")
    if not parts.hostname:
        raise Refused("the webhook URL has no host")
    try:
        port = parts.port
    except ValueError:
        raise Refused("the webhook URL has an invalid port") from None
    if port == 0:
        raise Refused("the webhook URL has an invalid port")
    return parts


def addresses(parts: SplitResult) -> list[tuple[Any, ...]]:
    """The host's addresses (getaddrinfo rows), every one of them allowed; Refused or Unreachable otherwise."""
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    try:
        rows = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise Unreachable(f"{parts.hostname} does not resolve: {exc}") from exc
    for row in rows:
        ip = ipaddress.ip_address(str(row[4][0]).split("%", 1)[0])
        if not allowed_address(ip):  # which address is not said: it would map the inside of the network
            raise Refused(f"{parts.hostname} resolves to an address inside the network; webhooks go to public addresses only")
    if not rows:
        raise Unreachable(f"{parts.hostname} has no address")
    return rows


def allowed_address(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """A public address, or one in WEBHOOKS_ALLOWED_NETWORKS; IPv6 that wraps IPv4 (mapped, 6to4, Teredo) is judged by the IPv4 inside."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if inner is not None:
            return allowed_address(inner)
        if ip.is_site_local:
            return False
    if any(ip in ipaddress.ip_network(net, strict=False) for net in settings.WEBHOOKS_ALLOWED_NETWORKS):
        return True
    return ip.is_global and not (ip.is_multicast or ip.is_reserved)


def check(url: str) -> None:
    """Refused unless `url` may receive webhooks now (its form, then every address its host resolves to)."""
    addresses(check_url(url))


def post(url: str, body: bytes, headers: dict[str, str], *, timeout: float) -> Answer:
    """POST `body` to `url` at an address just checked; no redirects followed. Refused or Unreachable, else the answer.

    `timeout` bounds the whole attempt, not each read: a receiver that answers a byte at a time is
    cut off when it runs out (its socket shut down from a timer), as is one that never answers.
    """
    parts = check_url(url)
    family, _, _, _, sockaddr = addresses(parts)[0]
    https = parts.scheme.lower() == "https"
    port = parts.port or (443 if https else 80)
    conn: http.client.HTTPConnection = (
        _PinnedHTTPS(parts.hostname or "", port, timeout=timeout, context=ssl.create_default_context()) if https  # verifies the name
        else _Pinned(parts.hostname or "", port, timeout=timeout)
    )
    conn.pinned = (family, sockaddr)  # type: ignore[attr-defined]
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    started = time.perf_counter()
    late = threading.Event()
    deadline = threading.Timer(timeout, _cut, args=(conn, late))
    deadline.start()
    try:
        conn.request("POST", target, body=body, headers={**headers, "Content-Length": str(len(body))})
        response = conn.getresponse()
        excerpt = response.read(EXCERPT).decode("utf-8", errors="replace")
        if late.is_set():  # what was read is cut short
            raise TimeoutError
        return Answer(response.status, (time.perf_counter() - started) * 1000, excerpt, retry_after(response.getheader("Retry-After")))
    except (TimeoutError, socket.timeout) as exc:
        raise Unreachable(f"no answer within {timeout:g}s", timeout=True) from exc
    except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
        if late.is_set():
            raise Unreachable(f"no answer within {timeout:g}s", timeout=True) from exc
        raise Unreachable(f"{type(exc).__name__}: {exc}") from exc
    except ValueError as exc:  # a request http.client cannot put on the wire
        raise Refused(f"the request cannot be sent: {exc}") from exc
    finally:
        deadline.cancel()
        conn.close()


def _cut(conn: http.client.HTTPConnection, late: threading.Event) -> None:
    """The attempt's time is up: shut its socket down, so the read in progress returns at once."""
    late.set()
    sock = conn.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class _Pinned(http.client.HTTPConnection):
    pinned: tuple[int, Any]

    def connect(self) -> None:
        family, sockaddr = self.pinned
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)  # type: ignore[arg-type]
        try:
            sock.connect(sockaddr)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class _PinnedHTTPS(http.client.HTTPSConnection):
    pinned: tuple[int, Any]

    def connect(self) -> None:
        _Pinned.connect(self)  # type: ignore[arg-type]
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self.host)  # type: ignore[attr-defined]
