"""Task types. Apps register their work here: `@task("name", queue=...)` on `func(ctx: JobContext, payload)`.

The engine's workers (`manage.py worker`) run them; Redis carries only job ids, so a stock RQ
worker has nothing to run.
"""
from __future__ import annotations

from jobs.engine.context import JobContext
from jobs.engine.registry import task

__all__ = ["JobContext", "task"]
