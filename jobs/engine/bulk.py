"""The machinery of bulk operations: ids in chunks, each chunk locked and moved with set-based statements in one short transaction."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Iterator

from django.db import transaction

from jobs.engine import broker, hooks, outbox
from jobs.engine.states import transition_many_events
from jobs.models import Job, JobEvent

#: Bulk operations work through ids in chunks of this size, one short transaction each.
CHUNK = 500


def chunks(ids: Iterable[str], size: int | None = None) -> Iterator[list[str]]:
    """`ids` in lists of at most `size` (default CHUNK), read lazily (an action on a million rows never holds them all)."""
    size = size or CHUNK
    chunk: list[str] = []
    for job_id in ids:
        chunk.append(job_id)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def locked(chunk: list[str]) -> dict[str, tuple[str, str]]:
    """id -> (queue, status) of the chunk's rows, locked; rows another writer holds are left out."""
    rows = Job.objects.select_for_update(skip_locked=True).filter(pk__in=chunk).values_list("id", "queue", "status")
    return {i: (q, st) for i, q, st in rows}


def skipped(chunk: list[str], moved: set[str], found: dict[str, tuple[str, str]], wanted: str) -> dict[str, str]:
    """Why each id of the chunk that did not move was left alone."""
    return {
        i: f"job {i} is {found[i][1]}, not {wanted}" if i in found else f"job {i} not found or being changed"
        for i in chunk
        if i not in moved
    }


def move(found: dict[str, tuple[str, str]], sources: Iterable[str], target: str, message: str, **fields: Any) -> list[JobEvent]:
    """Move the locked rows that are in one of `sources` to `target`, one statement per source; returns their events."""
    events: list[JobEvent] = []
    for source in sources:
        rows = [(i, q) for i, (q, st) in found.items() if st == source]
        if rows:
            events += transition_many_events(rows, source=source, target=target, message=message, **fields)
    return events


@dataclass(frozen=True)
class Told:
    """A bulk move's changes for the hooks, and what of them waits (outbox.deliver's blocked and held)."""

    changes: list[hooks.JobChange]
    blocked: set[str]
    held: dict[str, set[str]]


def changes(events: list[JobEvent]) -> Told:
    """The hooks' changes of a bulk move's events, with the jobs and hooks that must wait for earlier changes."""
    blocked, held = outbox.waits({e.job_id for e in events}, exclude={e.id for e in events})
    return Told([outbox.change_of(e) for e in events], blocked, held)


def tell(jobs: list[Job], events: list[JobEvent], *, unlist: bool = False) -> None:
    """After commit: take the jobs out of Redis's lists (with `unlist`), then the hooks get their changes."""
    told = changes(events)

    def fire() -> None:
        if unlist and jobs:
            broker.remove_many((j.id, j.queue, j.priority) for j in jobs)
        outbox.deliver(told.changes, blocked=told.blocked, held=told.held)

    transaction.on_commit(fire)
