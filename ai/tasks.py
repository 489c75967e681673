"""What the `ai-jobs` queue runs: one job type per kind of AI job (the console filters by it)."""
from __future__ import annotations

from typing import Any

from ai import services
from jobs.tasks import JobContext, task


def _run(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Run one AI job (payload: aiJobId) and record its usage."""
    return services.run(ctx, ai_job_id=payload["aiJobId"])


for _kind in services.KINDS:
    task(services.engine_type(_kind), queue=services.QUEUE)(_run)
