"""What RQ runs: load the job by id and hand it to the engine. The engine's own worker calls the same code."""
from __future__ import annotations

import socket

from jobs.engine import runner


def run_job(job_id: str) -> None:
    """Entry point of every RQ job this project enqueues; lets a plain RQ worker run engine jobs too."""
    from rq import get_current_job

    rq_job = get_current_job()
    queue = rq_job.origin.rsplit(".p", 1)[0] if rq_job else ""
    runner.run(job_id, queue=queue, worker=f"rq:{socket.gethostname()}")
