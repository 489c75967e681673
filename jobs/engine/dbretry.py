"""Riding out a database restart: a worker retries its writes instead of dying with its job's attempt.

A PostgreSQL restart breaks every open connection; the next statement raises OperationalError
(or InterfaceError on a closed connection). `retrying` drops the connection, waits with backoff
and runs the write again on a new one, for up to settings.JOBS_DB_RETRY seconds. Only for writes
that are safe to run again: the engine's transitions are conditional, so a second run of one that
did commit finds the row moved and says so (the callers handle that case).
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable, TypeVar

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection

log = logging.getLogger(__name__)

T = TypeVar("T")
#: The first wait after a failed write, doubled each time up to MAX_WAIT.
FIRST_WAIT = 0.2
MAX_WAIT = 2.0


def retrying(write: Callable[[], T], *, what: str) -> T:
    """Run `write`; on a lost database connection, reconnect and run it again until JOBS_DB_RETRY seconds have passed."""
    limit = settings.JOBS_DB_RETRY
    give_up = time.monotonic() + limit
    wait = FIRST_WAIT
    while True:
        try:
            return write()
        except (OperationalError, InterfaceError) as exc:
            if connection.in_atomic_block or time.monotonic() + wait > give_up:
                raise
            log.warning("%s: database unreachable (%s); retrying in %.1fs", what, str(exc).strip().splitlines()[0] if str(exc) else type(exc).__name__, wait)
            drop_connection()
            time.sleep(wait)
            wait = min(wait * 2, MAX_WAIT)


def cancel_query(db: Any) -> None:
    """Ask the server to stop the statement running on `db` (a Django connection, maybe another thread's); safe from any thread."""
    raw = getattr(db, "connection", None)
    if raw is None:
        return
    try:
        raw.cancel_safe(timeout=2.0) if hasattr(raw, "cancel_safe") else raw.cancel()
    except Exception:
        log.debug("could not cancel the interrupted query", exc_info=True)


def drop_connection(*, cancel: bool = False) -> None:
    """Close this thread's database connection (with `cancel`, first ask the server to stop the query it runs)."""
    if cancel:
        cancel_query(connection)
    try:
        connection.close()
    except Exception:
        connection.connection = None  # the socket is gone already; the next query connects afresh
