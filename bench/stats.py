"""Queue stats with a million jobs: jobs.engine.stats.counts() against counting the jobs table.

    DATABASE_URL=postgres://127.0.0.1:5432/h_bench_stats REDIS_URL=redis://127.0.0.1:6379/10 \
        .venv/bin/python bench/stats.py [--jobs 1000000] [--recent 3000]

It fills its database with --jobs job rows (and their creation events, folded as the scheduler
folds them), adds --recent jobs through services.enqueue_many whose events are left unfolded (the
tail a read must add), then times, in the same run:
  - stats.counts(), what every stats endpoint and the Queues page read;
  - the baseline: SELECT queue, status, COUNT(*) FROM the jobs table GROUP BY queue, status;
  - the console's job list count: EstimatedCountPaginator against a full COUNT(*).
It checks that counts() equals the baseline, prints a table with the ratios, and ends with one JSON
line. The bench owns its database: it refuses to start if the jobs table has rows (unless --force)
and empties the jobs tables when it ends.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any, Callable

from engine import setup_django  # bench/engine.py: bench settings, database created and migrated


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Median milliseconds of `repeat` calls, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), result


def fill(n: int) -> None:
    """n job rows and their creation events, written by the database itself (minutes -> seconds)."""
    from django.db import connection

    statuses = "ARRAY['completed','completed','completed','completed','completed','completed','completed','completed','failed','waiting','delayed','cancelled']"
    with connection.cursor() as c:
        c.execute(
            f"""
            INSERT INTO jobs_job (id, queue, type, payload, priority, status, progress, progress_message,
                attempts_made, max_attempts, error_kind, error_class, failed_reason, traceback,
                created_at, updated_at, worker_name)
            SELECT md5(i::text || clock_timestamp()::text), (ARRAY['default','bench'])[1 + i %% 2], 'noop', '{{}}', 5,
                   ({statuses})[1 + i %% 12], 0, '', 0, 3, '', '', '', '', now(), now(), ''
            FROM generate_series(1, %s) AS i
            """,
            [n],
        )
        c.execute(
            "INSERT INTO jobs_jobevent (job_id, queue, from_status, to_status, message, data, at, folded) "
            "SELECT id, queue, NULL, status, 'created', '{}', now(), false FROM jobs_job"
        )


def empty() -> None:
    from django.db import connection

    with connection.cursor() as c:
        c.execute("TRUNCATE jobs_jobevent, jobs_queuecount, jobs_deadletter, jobs_job CASCADE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--recent", type=int, default=3000, help="jobs enqueued after the fold (unfolded events)")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--explain", action="store_true", help="print the plan of the unfolded-events read")
    parser.add_argument("--force", action="store_true", help="run even if the jobs table has rows (they are deleted)")
    args = parser.parse_args()
    setup_django(migrate=True)

    from django.db import connection
    from django.db.models import Count

    from jobs import services
    from jobs.console.paginators import EstimatedCountPaginator
    from jobs.engine import broker, stats
    from jobs.models import Job, JobEvent

    if Job.objects.exists() and not args.force:
        raise SystemExit("the jobs table has rows: bench/stats.py owns its database (use another DATABASE_URL, or --force)")
    empty()
    try:
        t = time.perf_counter()
        fill(args.jobs)
        while stats.fold(lag=0, batch=100_000):
            pass
        with connection.cursor() as c:
            # What autovacuum does after a bulk change; without it the planner still believes every
            # event unfolded and scans the table instead of the partial index of unfolded events.
            c.execute("VACUUM ANALYZE jobs_job")
            c.execute("VACUUM ANALYZE jobs_jobevent")
        fill_s = time.perf_counter() - t
        for start in range(0, args.recent, 1000):
            services.enqueue_many([services.JobSpec(type="noop", queue="bench") for _ in range(min(1000, args.recent - start))])
        if args.explain:
            with connection.cursor() as c:
                c.execute("EXPLAIN ANALYZE SELECT queue, to_status, COUNT(*) FROM jobs_jobevent WHERE folded = false AND to_status IS NOT NULL GROUP BY 1, 2")
                print("\n".join(r[0] for r in c.fetchall()))

        def baseline() -> dict[str, dict[str, int]]:
            out: dict[str, dict[str, int]] = {}
            for row in Job.objects.values("queue", "status").annotate(n=Count("id")).order_by():
                out.setdefault(row["queue"], {})[row["status"]] = row["n"]
            return out

        counts_ms, got = timed(stats.counts, args.repeat)
        base_ms, want = timed(baseline, max(3, args.repeat // 4))
        got = {q: {s: n for s, n in v.items() if n} for q, v in got.items()}
        if got != want:
            raise SystemExit(f"stats.counts() disagrees with COUNT(*): {got} != {want}")
        est_ms, est = timed(lambda: EstimatedCountPaginator(Job.objects.order_by("-created_at"), 100).count, args.repeat)
        full_ms, full = timed(lambda: Job.objects.count(), max(3, args.repeat // 4))
        unfolded = JobEvent.objects.filter(folded=False).count()
    finally:
        empty()
        broker.connection().delete(*broker.listen_keys(["bench"]))
        connection.close()

    fig = {
        "jobs": args.jobs + args.recent,
        "unfolded_events": unfolded,
        "fill_and_fold_s": round(fill_s, 2),
        "counts_ms": round(counts_ms, 3),
        "group_count_ms": round(base_ms, 3),
        "ratio_group_count_vs_counts": round(base_ms / counts_ms, 1),
        "paginator_count_ms": round(est_ms, 3),
        "full_count_ms": round(full_ms, 3),
        "paginator_estimate": est,
        "full_count": full,
    }
    print(f"queue stats with {fig['jobs']:,} jobs ({unfolded:,} events not yet folded)")
    print(f"  stats.counts()                              {counts_ms:10.2f} ms")
    print(f"  GROUP BY queue, status COUNT(*) (baseline)  {base_ms:10.2f} ms   {fig['ratio_group_count_vs_counts']}x slower")
    print(f"  job list count, EstimatedCountPaginator     {est_ms:10.2f} ms   ({est:,}, estimate)")
    print(f"  job list count, COUNT(*)                    {full_ms:10.2f} ms   ({full:,})")
    print(json.dumps(fig, sort_keys=True))


if __name__ == "__main__":
    main()
