"""Sample job types on the default queue, for tests, the demo and benchmarks."""
from __future__ import annotations

import signal
import time
from typing import Any

from jobs.engine.context import JobContext
from jobs.engine.registry import task
from jobs.exceptions import ErrorKind, JobError


@task("noop", api=True)
def noop(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Does nothing: measures the engine's own cost."""
    return None


@task("echo", api=True)
def echo(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Returns its payload."""
    return {"echo": payload}


@task("sleep", api=True)
def sleep(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Sleeps `seconds` in steps, reporting progress and honouring cancel requests (`ignore_cancel` to test hard stops).

    With `slow_attempts: n` only the first n attempts sleep; later ones return at once (recovery tests).
    With `block_signals: true` it blocks the signals the worker interrupts with, as native code
    that never returns to Python would (the worker's last resort: record the outcome and exit).
    """
    seconds = float(payload.get("seconds", 1.0))
    slow = payload.get("slow_attempts")
    if slow is not None and ctx.attempt > int(slow):
        return {"slept": 0.0}
    steps = max(1, int(payload.get("steps", 10)))
    if payload.get("block_signals"):
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1, signal.SIGALRM})
        try:
            time.sleep(seconds)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
        return {"slept": seconds}
    for i in range(steps):
        if not payload.get("ignore_cancel"):
            ctx.check_cancelled()
        time.sleep(seconds / steps)
        ctx.progress((i + 1) * 100 / steps, f"step {i + 1}/{steps}")
    return {"slept": seconds}


@task("fail", api=True)
def fail(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Fails with `kind` (TRANSIENT by default); `succeed_on_attempt` makes a later attempt succeed."""
    succeed_on = payload.get("succeed_on_attempt")
    if succeed_on is not None and ctx.attempt >= int(succeed_on):
        return None
    kind = ErrorKind(payload.get("kind", "TRANSIENT"))
    raise JobError(payload.get("message", f"sample {kind.value} failure"), kind=kind, retryable=payload.get("retryable"))


@task("crash", api=True)
def crash(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Raises a plain exception (an unknown error: retryable)."""
    raise RuntimeError(payload.get("message", "sample crash"))


@task("db_wait")
def db_wait(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Waits `seconds` inside one database call (PostgreSQL's pg_sleep): where the fault tests make a timeout,
    a cancel or a shutdown land. Not open to API clients: it holds a database connection."""
    from django.db import connection

    seconds = float(payload.get("seconds", 1))
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(%s)", [seconds])
    return {"waited": seconds}


@task("record")
def record(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Sleeps `seconds`, then appends its job id to the file `file`: the fault tests count how often each job really
    ran to its end, whatever the engine recorded. Not open to API clients: it writes a file."""
    time.sleep(float(payload.get("seconds", 0)))
    with open(str(payload["file"]), "a", encoding="ascii") as fh:
        fh.write(ctx.job_id + "\n")
    return {"recorded": True}


@task("http_get")
def http_get(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """GETs `url` (urllib, `timeout` seconds, default 10) and returns the answer's status and size: an I/O-bound job
    (bench/concurrency.py). Not open to API clients: it requests any URL it is given."""
    import urllib.request

    with urllib.request.urlopen(str(payload["url"]), timeout=float(payload.get("timeout", 10))) as answer:
        body = answer.read()
        return {"status": answer.status, "bytes": len(body)}
