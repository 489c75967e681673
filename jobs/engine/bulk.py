"""The machinery of bulk operations: ids in chunks, each chunk locked and moved with set-based statements in one short transaction."""
from __future__ import annotations

from typing import Any, Iterable, Iterator

from django.db import transaction

from jobs.engine import broker, hooks
from jobs.engine.states import transition_many
from jobs.models import Job

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


def move(found: dict[str, tuple[str, str]], sources: Iterable[str], target: str, message: str, **fields: Any) -> list[str]:
    """Move the locked rows that are in one of `sources` to `target`, one statement per source; returns the ids moved."""
    moved: list[str] = []
    for source in sources:
        rows = [(i, q) for i, (q, st) in found.items() if st == source]
        if rows:
            moved += transition_many(rows, source=source, target=target, message=message, **fields)
    return moved


def tell(jobs: list[Job], event: str, *, unlist: bool = False) -> None:
    """After commit, fire the hooks for each job (and with `unlist`, take them out of Redis's lists first)."""

    def fire() -> None:
        if unlist and jobs:
            broker.remove_many((j.id, j.queue, j.priority) for j in jobs)
        for j in jobs:
            hooks.fire(hooks.JobChange.of(j, event, j.status))

    transaction.on_commit(fire)
