"""The web server's command line, the same for `manage.py serve`, the tests and the benchmarks."""
from __future__ import annotations

import sys


def command(host: str, port: int, *, access_log: bool = True) -> list[str]:
    """uvicorn serving config.asgi (HTTP and WebSockets) on `host`:`port`; it streams request bodies (config/asgi.py says why)."""
    argv = [
        sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", host, "--port", str(port),
        "--lifespan", "off", "--ws", "websockets", "--timeout-graceful-shutdown", "5",
    ]
    return argv if access_log else [*argv, "--no-access-log"]
