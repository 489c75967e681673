"""Task types and what RQ runs. Apps register their work here: `@task("name", queue=...)` on `func(ctx: JobContext, payload)`.

`run_job` is the function every RQ job this project enqueues names: it loads the job by id and
hands it to the engine, so a plain RQ worker could run engine jobs too. The engine's own worker
calls the same code.
"""
from __future__ import annotations

import socket

from jobs.engine import runner
from jobs.engine.context import JobContext
from jobs.engine.registry import task

__all__ = ["JobContext", "run_job", "task"]


def run_job(job_id: str) -> None:
    """Entry point of every RQ job this project enqueues; lets a plain RQ worker run engine jobs too."""
    from rq import get_current_job

    rq_job = get_current_job()
    queue = rq_job.origin.rsplit(".p", 1)[0] if rq_job else ""
    runner.run(job_id, queue=queue, worker=f"rq:{socket.gethostname()}")
