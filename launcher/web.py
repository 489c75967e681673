"""The web server's command line, the same for `manage.py serve`, the tests and the benchmarks."""
from __future__ import annotations

import socket
import sys
from contextlib import suppress
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with Nagle's algorithm off on every connection.

    With --workers, uvicorn binds the listening socket itself with proto 0, and asyncio then leaves
    TCP_NODELAY unset on accepted connections; uvicorn writes a response's headers and body
    separately, so on a keep-alive connection the body waited for the client's delayed ACK (40 ms
    on Linux) on every request. Setting it here makes every process answer alike.
    """

    def connection_made(self, transport: Any) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)


def command(host: str, port: int, *, access_log: bool = True, processes: int = 1) -> list[str]:
    """uvicorn serving config.asgi (HTTP and WebSockets) on `host`:`port`; it streams request bodies (config/asgi.py says why).

    Django runs one process's synchronous views (every DRF view) one at a time, on one thread; with
    `processes` > 1 uvicorn starts that many processes on the one port, so concurrent requests run
    side by side (events reach every process's sockets through the channel layer).
    """
    argv = [
        sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", host, "--port", str(port),
        "--lifespan", "off", "--http", "launcher.web:HttpProtocol", "--ws", "websockets", "--timeout-graceful-shutdown", "5",
    ]
    if processes > 1:
        argv += ["--workers", str(processes)]
    return argv if access_log else [*argv, "--no-access-log"]
