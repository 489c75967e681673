"""Dead letters grouped by error fingerprint, as Sentry groups issues: the open groups, and retry or discard of a
whole group or of every open letter matching a filter.

One concept in one module, its reads and its writes (jobs.selectors and jobs.services are near their
size limit). A letter's fingerprint is written with it (jobs.engine.lifecycle, jobs.engine.fingerprint).
The writes reuse services.retry_dead_letters and discard_dead_letters: chunks of bulk.CHUNK letters,
each its own short transaction, each letter resolved once however many operators click. The letters'
ids are read lazily by primary key, so a group of 50,000 is never held in one transaction or one
list, and each operation is audited once with its filter and how many letters it took. They are
operators' operations: any other account is refused (Forbidden), as the console and the API refuse it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterator

from django.db.models import Count, Max, Min, QuerySet

from jobs import access, selectors, services
from jobs.access import Viewer
from jobs.engine import audit, bulk
from jobs.exceptions import ErrorKind, Forbidden, InvalidInput, NotFound
from jobs.models import DeadLetter

#: A fingerprint as jobs.engine.fingerprint writes it (a shorter prefix is refused: a group is one digest).
FINGERPRINT = re.compile(r"[0-9a-f]{16}")
#: The most groups a listing shows, largest first (a flood of unique errors must not fill a page).
GROUPS_SHOWN = 200


@dataclass(frozen=True)
class LetterFilter:
    """Which open dead letters an operation takes: one fingerprint, queue and error kind, each optional (empty: any)."""

    fingerprint: str = ""
    queue: str = ""
    error_kind: str = ""

    def problems(self) -> dict[str, list[str]]:
        """What is malformed, by API field name ({} if nothing)."""
        out: dict[str, list[str]] = {}
        if self.fingerprint and not FINGERPRINT.fullmatch(self.fingerprint):
            out["fingerprint"] = ["must be 16 lowercase hex characters"]
        if self.error_kind and self.error_kind not in ErrorKind.__members__:
            out["errorKind"] = [f"must be one of {list(ErrorKind.__members__)}"]
        return out

    def as_detail(self) -> dict[str, str]:
        """The filter's set fields, as the audit log and the API name them."""
        named = {"fingerprint": self.fingerprint, "queue": self.queue, "errorKind": self.error_kind}
        return {k: v for k, v in named.items() if v}


@dataclass(frozen=True)
class DeadLetterGroup:
    """The open dead letters of one fingerprint (the same error): how many, first and last seen, per queue, the latest one."""

    fingerprint: str
    signature: str
    count: int
    first_seen: datetime
    last_seen: datetime
    queues: dict[str, int]
    sample: DeadLetter


# -- reads --------------------------------------------------------------------------------------


def open_letters(where: LetterFilter, *, user: Viewer | None = None) -> QuerySet[DeadLetter]:
    """The open dead letters matching `where` that `user` may see (None: all); InvalidInput names a malformed field."""
    problems = where.problems()
    if problems:
        raise InvalidInput("invalid dead-letter filter", extra=problems)
    lookups = {"fingerprint": where.fingerprint, "queue": where.queue, "error_kind": where.error_kind}
    return selectors.open_dead_letters(user=user).filter(**{k: v for k, v in lookups.items() if v})


def groups(*, queue: str = "", error_kind: str = "", fingerprint: str = "", user: Viewer | None = None, limit: int = GROUPS_SHOWN) -> list[DeadLetterGroup]:
    """Open dead letters grouped by fingerprint, largest group first, each with its latest letter (and its job) as a sample.

    Three statements whatever the numbers: the groups, then the queues of those groups, both read
    from the partial index deadletter_open_fp alone; then the samples by id. Letters without a
    fingerprint (written by hand, not by a worker) are left out.
    """
    letters = open_letters(LetterFilter(fingerprint, queue, error_kind), user=user).exclude(fingerprint="").order_by()
    rows = list(
        letters.values("fingerprint").annotate(n=Count("id"), first=Min("created_at"), last=Max("created_at"), latest=Max("id"))
        .order_by("-n", "-last", "fingerprint")[:limit]
    )
    if not rows:
        return []
    per_queue: dict[str, dict[str, int]] = {}
    for row in letters.filter(fingerprint__in=[r["fingerprint"] for r in rows]).values("fingerprint", "queue").annotate(n=Count("id")):
        per_queue.setdefault(row["fingerprint"], {})[row["queue"]] = row["n"]
    samples = DeadLetter.objects.select_related("job").in_bulk([r["latest"] for r in rows])
    return [
        DeadLetterGroup(
            fingerprint=r["fingerprint"], signature=samples[r["latest"]].signature, count=r["n"], first_seen=r["first"],
            last_seen=r["last"], queues=dict(sorted(per_queue.get(r["fingerprint"], {}).items(), key=lambda kv: (-kv[1], kv[0]))),
            sample=samples[r["latest"]],
        )
        for r in rows
    ]


def group(fingerprint: str, *, user: Viewer | None = None) -> DeadLetterGroup:
    """One open group; NotFound when no open letter the user may see has this fingerprint."""
    found = groups(fingerprint=fingerprint, user=user, limit=1)
    if not found:
        raise NotFound(f"no open dead letters with fingerprint {fingerprint}", extra={"fingerprint": fingerprint})
    return found[0]


def _job_ids(letters: QuerySet[DeadLetter]) -> Iterator[str]:
    """The letters' job ids, bulk.CHUNK per query, walking the primary key: letters that an operation resolves
    meanwhile leave the filter without shifting the pages."""
    base = letters.order_by("pk").values_list("pk", "job_id")
    last = 0
    while True:
        page = list(base.filter(pk__gt=last)[: bulk.CHUNK])
        if not page:
            return
        yield from (job_id for _, job_id in page)
        last = page[-1][0]


# -- writes -------------------------------------------------------------------------------------


def _operator(actor: Viewer | None) -> None:
    if actor is not None and not access.is_operator(actor):
        raise Forbidden("retrying or discarding dead letters in bulk is for operators")


def retry_matching(
    where: LetterFilter, *, actor: Viewer | None = None, source: str = "admin", progress: Callable[[int], None] | None = None,
    action: str = "dlq_retry_matching", detail: dict[str, Any] | None = None,
) -> tuple[dict[str, str], dict[str, str]]:
    """Retry every open dead letter matching `where` as a new job, in chunks; returns ({dead job id: new job id}, {skipped id: why}).

    Audited once when any was retried: the filter, how many were retried and skipped, the dead jobs' ids.
    """
    _operator(actor)
    letters = open_letters(where)
    retried, skipped = services.retry_dead_letters(_job_ids(letters), actor=actor, source=source, progress=progress, record=False)
    if retried:
        audit.record(
            actor=actor, action=action, queue=where.queue, job_ids=list(retried), count=len(retried), source=source,
            detail={**where.as_detail(), **(detail or {}), "retried": len(retried), "skipped": len(skipped)},
        )
    return retried, skipped


def discard_matching(
    where: LetterFilter, *, actor: Viewer | None = None, source: str = "admin", progress: Callable[[int], None] | None = None,
    action: str = "dlq_discard_matching", detail: dict[str, Any] | None = None,
) -> int:
    """Discard every open dead letter matching `where` (reviewed; the failed jobs stay), in chunks; returns how many. Audited once."""
    _operator(actor)
    done = 0
    for chunk in bulk.chunks(_job_ids(open_letters(where))):
        done += services.discard_dead_letters(chunk, actor=actor, source=source, record=False)
        if progress is not None:
            progress(len(chunk))
    if done:
        audit.record(actor=actor, action=action, queue=where.queue, count=done, source=source, detail={**where.as_detail(), **(detail or {}), "discarded": done})
    return done


def retry_group(
    fingerprint: str, *, actor: Viewer | None = None, source: str = "admin", progress: Callable[[int], None] | None = None,
) -> tuple[dict[str, str], dict[str, str]]:
    """Retry every open letter of one group (retry_matching by fingerprint); NotFound when the group has none open."""
    _operator(actor)
    found = group(fingerprint)
    return retry_matching(
        LetterFilter(fingerprint=fingerprint), actor=actor, source=source, progress=progress, action="dlq_retry_group", detail={"signature": found.signature}
    )


def discard_group(fingerprint: str, *, actor: Viewer | None = None, source: str = "admin", progress: Callable[[int], None] | None = None) -> int:
    """Discard every open letter of one group (discard_matching by fingerprint); NotFound when the group has none open."""
    _operator(actor)
    found = group(fingerprint)
    return discard_matching(
        LetterFilter(fingerprint=fingerprint), actor=actor, source=source, progress=progress, action="dlq_discard_group", detail={"signature": found.signature}
    )
