"""Registry of subscribable topics: a kind ("job", "queue", "project", ...) and who may see an id of it."""
from __future__ import annotations

import re
from typing import Any, Callable

from events.exceptions import UnknownTopic

CanSee = Callable[[Any, str], bool]
_TOPICS: dict[str, CanSee] = {}

#: Channels allows ASCII alphanumerics, hyphens, underscores and periods in group names, under 100 chars.
_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9._-]")
MAX_GROUP_NAME = 99


def register_topic(kind: str, can_see: CanSee) -> None:
    """Declare a topic kind; `can_see(user, id)` runs in a sync thread and may query the database."""
    if not kind or _NOT_ALLOWED.search(kind):
        raise ValueError(f"topic kind must be letters, digits, '.', '_' or '-': {kind!r}")
    _TOPICS[kind] = can_see


def unregister_topic(kind: str) -> None:
    """Remove a topic kind (tests)."""
    _TOPICS.pop(kind, None)


def kinds() -> list[str]:
    """The registered topic kinds, sorted."""
    return sorted(_TOPICS)


def can_see(kind: str, user: Any, id: str) -> bool:
    """Whether `user` may subscribe to `kind` `id`; raises UnknownTopic for an unregistered kind."""
    try:
        check = _TOPICS[kind]
    except KeyError:
        raise UnknownTopic(kind) from None
    if user is None or not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", True):
        return False
    return bool(check(user, id))


def group_name(kind: str, id: str) -> str:
    """The Channels group of one topic: f"{kind}.{id}" with characters Channels refuses replaced by '_'."""
    name = _NOT_ALLOWED.sub("_", f"{kind}.{id}")
    if len(name) > MAX_GROUP_NAME:
        import hashlib

        name = name[: MAX_GROUP_NAME - 17] + "." + hashlib.sha256(f"{kind}.{id}".encode()).hexdigest()[:16]
    return name


def _job_visible(user: Any, id: str) -> bool:
    """The job's owner or staff."""
    from jobs.models import Job

    return Job.objects.filter(pk=id).visible_to(user).exists()


def _queue_visible(user: Any, id: str) -> bool:
    """Staff only, and only a declared queue."""
    from jobs.engine import conf

    return bool(getattr(user, "is_staff", False)) and id in conf.all_queues()


def register_builtin() -> None:
    """Register the engine's own topics: "job" and "queue"."""
    register_topic("job", _job_visible)
    register_topic("queue", _queue_visible)
