"""Extension points called in order after a job's status change commits (not post_save signals).

Other apps register here, e.g. a pipeline enqueues its next stage when a stage's job completes,
and the events app forwards every change to WebSocket subscribers.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

log = logging.getLogger(__name__)


class _JobLike(Protocol):
    """A job row or a worker's claim: what a change is built from."""

    @property
    def id(self) -> str: ...
    @property
    def queue(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def group_ref(self) -> str | None: ...
    @property
    def owner_id(self) -> int | None: ...


@dataclass(frozen=True)
class JobChange:
    """What just happened to a job, as a hook sees it."""

    job_id: str
    queue: str
    type: str
    event: str  # created, retried, started, progress, completed, failed, retrying, cancelled, waiting
    status: str
    group_ref: str | None = None
    owner_id: int | None = None
    progress: int = 0
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, job: _JobLike, event: str, status: str, *, progress: int = 0, **data: Any) -> JobChange:
        """The change `event` of `job`, now in `status`; `data` is what the hooks need of it (error, result, ...)."""
        return cls(
            job_id=job.id, queue=job.queue, type=job.type, event=event, status=status,
            group_ref=job.group_ref, owner_id=job.owner_id, progress=progress, data=data,
        )


Hook = Callable[[JobChange], None]
_HOOKS: list[Hook] = []


def register(hook: Hook) -> Hook:
    """Add a hook; returns it so this can be used as a decorator."""
    if hook not in _HOOKS:
        _HOOKS.append(hook)
    return hook


def unregister(hook: Hook) -> None:
    """Remove a hook (tests)."""
    if hook in _HOOKS:
        _HOOKS.remove(hook)


def fire(change: JobChange) -> None:
    """Call every hook in registration order; one hook's failure is logged and does not stop the rest."""
    for hook in list(_HOOKS):
        try:
            hook(change)
        except Exception:
            log.exception("job hook %s failed for %s %s", getattr(hook, "__qualname__", hook), change.event, change.job_id)
