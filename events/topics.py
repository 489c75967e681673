"""Registry of subscribable topics: a kind ("job", "queue", "project", ...) and who may see an id of it."""
from __future__ import annotations

import re
from typing import Callable

from events.exceptions import UnknownTopic
from jobs import access
from jobs.access import Viewer

CanSee = Callable[[Viewer, str], bool]
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


def can_see(kind: str, user: Viewer | None, id: str) -> bool:
    """Whether `user` may subscribe to `kind` `id`; raises UnknownTopic for an unregistered kind."""
    try:
        check = _TOPICS[kind]
    except KeyError:
        raise UnknownTopic(kind) from None
    # Anonymous and inactive accounts see nothing, whatever a registered check would say.
    return user is not None and access.is_member(user) and bool(check(user, id))


def group_name(kind: str, id: str) -> str:
    """The Channels group of one topic: f"{kind}.{id}" with characters Channels refuses replaced by '_'."""
    name = _NOT_ALLOWED.sub("_", f"{kind}.{id}")
    if len(name) > MAX_GROUP_NAME:
        import hashlib

        name = name[: MAX_GROUP_NAME - 17] + "." + hashlib.sha256(f"{kind}.{id}".encode()).hexdigest()[:16]
    return name


def _job_visible(user: Viewer, id: str) -> bool:
    """The job's owner or an operator (jobs.access)."""
    from jobs.models import Job

    return access.can_see(user, Job.objects.all(), id)


def _queue_visible(user: Viewer, id: str) -> bool:
    """Operators only, and only a declared queue."""
    from jobs import selectors

    return access.is_operator(user) and id in selectors.queue_names()


def of_group_ref(group_ref: str) -> tuple[str, str]:
    """The topic a job's group_ref names: "kind:id" for a registered kind (the assistant's "command:<id>"),
    else a pipeline project ("project", group_ref), as seed 2's jobs carry their project's id."""
    kind, sep, ref = group_ref.partition(":")
    if sep and kind != "project" and kind in _TOPICS:
        return kind, ref
    return "project", group_ref


def register_builtin() -> None:
    """Register the engine's own topics: "job" and "queue"."""
    register_topic("job", _job_visible)
    register_topic("queue", _queue_visible)
