from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, Callable, Iterator

import pytest

from tests.jobs.engine_support import drainer
from tests.net import http_server

AI_QUEUES = ("ai-jobs", "webhooks")


@pytest.fixture(autouse=True)
def loopback_webhooks(settings: Any) -> None:
    """Deliveries may go to plain http on loopback here (production: https and public addresses only)."""
    settings.WEBHOOKS_ALLOW_HTTP = True
    settings.WEBHOOKS_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    settings.WEBHOOKS_TIMEOUT = 2.0


@pytest.fixture
def drain_ai(burst: Callable[..., Any]) -> Callable[[], None]:
    """Run ai-jobs and webhooks until nothing is pending (a finished job queues its webhooks)."""
    return drainer(burst, AI_QUEUES)


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A real HTTP server in a thread that records what it receives and answers `script` in turn (then 200)."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    delay: float = 0.0


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            data = self.rfile.read(int(self.headers["Content-Length"]))
            state.received.append(Received({k.lower(): v for k, v in self.headers.items()}, data))
            if state.delay:
                time.sleep(state.delay)
            status, headers = state.script.pop(0) if state.script else (200, {})
            reply = json.dumps({"ok": status < 300}).encode()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: Any) -> None:
            pass

    with http_server(Handler) as base:
        state.url = base + "/hook"
        yield state
