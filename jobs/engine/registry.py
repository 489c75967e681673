"""Task types: a decorator names the queue a function runs on; workers look functions up here."""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

from django.conf import settings

from jobs.exceptions import InvalidInput

TaskFunc = Callable[..., Any]


@dataclass(frozen=True)
class TaskType:
    name: str
    func: TaskFunc
    queue: str
    api: bool
    description: str


_TYPES: dict[str, TaskType] = {}


def task(name: str, *, queue: str = "default", api: bool = False) -> Callable[[TaskFunc], TaskFunc]:
    """Register `func(ctx, **payload)` as job type `name` on `queue`; `api=True` lets API clients enqueue it."""

    def register(func: TaskFunc) -> TaskFunc:
        existing = _TYPES.get(name)
        if existing and existing.func is not func and existing.func.__qualname__ != func.__qualname__:
            raise ValueError(f"job type {name!r} is already registered by {existing.func.__module__}")
        _TYPES[name] = TaskType(name=name, func=func, queue=queue, api=api, description=(func.__doc__ or "").strip())
        return func

    return register


def get(name: str) -> TaskType:
    try:
        return _TYPES[name]
    except KeyError:
        raise InvalidInput(f"unknown job type {name!r}", extra={"type": [f"unknown job type; known: {sorted(_TYPES)}"]}) from None


def all_types() -> dict[str, TaskType]:
    return dict(_TYPES)


def autodiscover() -> None:
    """Import the modules listed in settings.JOBS_TASK_MODULES so their decorators run."""
    for module in getattr(settings, "JOBS_TASK_MODULES", []):
        importlib.import_module(module)
