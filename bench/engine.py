"""Engine benchmark: the full engine (PostgreSQL + Redis + RQ worker loop) against plain RQ.

    DATABASE_URL=postgres://127.0.0.1:5432/h_bench REDIS_URL=redis://127.0.0.1:6379/10 \
        .venv/bin/python bench/engine.py [--jobs 10000] [--repeat 3]

One run measures, for the same no-op function (jobs.samples.noop):
  (a) the engine: `services.enqueue_many` N jobs, then 1 and then 2 `manage.py worker --burst`
      processes; jobs/s from the first row's started_at to the last row's completed_at;
  (b) plain RQ with no database (its own Redis DB, --rq-db): `SimpleWorker` on N jobs and the
      default forking `Worker` on --fork-jobs jobs, burst mode, 1 process; jobs/s from the first
      job's started_at to the last job's ended_at;
  (c) the time of `services.enqueue_many(N)`, rows, events and the hand-off to Redis included;
  (d) enqueue-to-start latency at a steady --rate jobs/s, one `services.enqueue` per job while one
      long-running engine worker consumes (started_at - the moment the enqueue committed), and the
      same for a long-running RQ SimpleWorker (started_at - enqueued_at).
It prints a table and ends with one JSON line. With --repeat R every figure is the median of R runs.

The bench owns its database (created and migrated if missing) and its queue `bench`; it deletes
its rows and its Redis keys at the end. The plain-RQ Redis DB must hold nothing else: every rq:*
key in it is deleted afterwards.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from datetime import timezone as dt_timezone
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
QUEUE = "bench"
RQ_QUEUE = "bench-rq"
NOOP = "jobs.samples.noop"
TARGETS = {
    "engine_vs_rq_simple": 1.0, "engine_vs_rq_fork": 4.0, "enqueue_s": 1.0, "latency_p50_ms": 3.0, "latency_p95_ms": 10.0,
    "engine_vs_celery_solo": 1.0, "engine_vs_dramatiq": 1.0,  # the second: issue 11's moonshot
}

#: Threads of the threads-mode engine run (a no-op job gains nothing from threads: this shows their cost).
THREADS = 8

_children: list[subprocess.Popen[bytes]] = []


# -- environment ----------------------------------------------------------------------------------


def bench_env() -> dict[str, str]:
    """The environment of the bench and its workers: production-like settings, the bench queue."""
    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    env["DEBUG"] = "false"  # DEBUG keeps every SQL statement in memory: not what production runs
    env.setdefault("SECRET_KEY", "bench-" + secrets.token_hex(16))
    queues = json.loads(env["JOBS_QUEUES"]) if env.get("JOBS_QUEUES", "").lstrip().startswith("{") else {}
    queues[QUEUE] = {"attempts": 1, "timeout": 60, "group": "bench"}
    env["JOBS_QUEUES"] = json.dumps(queues)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def ensure_database(url: str) -> None:
    """Create the bench's PostgreSQL database if it does not exist yet."""
    import dj_database_url
    import psycopg

    db = dj_database_url.parse(url)
    if "postgresql" not in db["ENGINE"]:
        sys.exit("bench/engine.py needs DATABASE_URL=postgres://... (the engine's figures are for PostgreSQL)")
    params: dict[str, Any] = {k: v for k, v in dict(host=db["HOST"], port=db["PORT"], user=db["USER"], password=db["PASSWORD"]).items() if v}
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db["NAME"],)).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{db["NAME"]}"')


def setup_django(migrate: bool) -> None:
    os.environ.update(bench_env())
    if migrate:
        ensure_database(os.environ["DATABASE_URL"])
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", interactive=False, verbosity=0)


def rq_url(engine_url: str, db: int) -> str:
    parts = urlsplit(engine_url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


# -- processes ------------------------------------------------------------------------------------


def spawn(args: list[str]) -> subprocess.Popen[bytes]:
    """A child process; its output goes to a temporary file, shown only if it fails."""
    log = tempfile.TemporaryFile()
    p = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=bench_env(), stdout=log, stderr=subprocess.STDOUT)
    p.log = log  # type: ignore[attr-defined]
    _children.append(p)
    return p


def output(p: subprocess.Popen[bytes]) -> str:
    p.log.seek(0)  # type: ignore[attr-defined]
    return p.log.read().decode(errors="replace")[-3000:]  # type: ignore[attr-defined]


def engine_worker(name: str, *, burst: bool, threads: int = 0) -> subprocess.Popen[bytes]:
    return spawn(["manage.py", "worker", QUEUE, "--name", name, *(["--burst"] if burst else []), *(["--threads", str(threads)] if threads else [])])


def rq_worker(kind: str, url: str, *, burst: bool) -> subprocess.Popen[bytes]:
    return spawn([str(Path(__file__).resolve()), "--rq-worker", kind, "--rq-url", url, *(["--burst"] if burst else [])])


def stop(p: subprocess.Popen[bytes]) -> None:
    """Warm shutdown (SIGTERM), then kill if it does not exit."""
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    if p in _children:
        _children.remove(p)


def wait_all(procs: list[subprocess.Popen[bytes]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            stop(p)
            raise RuntimeError(f"worker {p.args!r} did not finish within {timeout:.0f}s:\n{output(p)}") from None
        if p.returncode != 0:
            raise RuntimeError(f"worker {p.args!r} exited with {p.returncode}:\n{output(p)}")
        if p in _children:
            _children.remove(p)


def wait_until(check: Callable[[], bool], timeout: float, what: str, every: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(every)


def run_rq_worker(kind: str, url: str, burst: bool) -> None:
    """Child process: a plain RQ worker on the bench's RQ queue (no database touched by the jobs)."""
    from redis import Redis
    from rq import Queue, SimpleWorker, Worker

    conn = Redis.from_url(url)
    cls = SimpleWorker if kind == "simple" else Worker
    worker = cls([Queue(RQ_QUEUE, connection=conn)], connection=conn, name=f"bench-rq-{kind}-{os.getpid()}")
    worker.work(burst=burst, logging_level="WARNING")


# -- measurements ---------------------------------------------------------------------------------


def _ts(value: datetime | None) -> float:
    assert value is not None
    return (value if value.tzinfo else value.replace(tzinfo=dt_timezone.utc)).timestamp()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def clean_engine(conn: Any) -> None:
    """Delete the bench queue's rows and Redis keys (its workers' keys included)."""
    from django.db import connection as db

    from jobs.engine import broker, priority
    from jobs.models import Job, WorkerHeartbeat

    ids = list(Job.objects.filter(queue=QUEUE).values_list("id", flat=True))
    with db.cursor() as cur:
        cur.execute("DELETE FROM jobs_jobevent WHERE queue = %s", [QUEUE])
    Job.objects.filter(queue=QUEUE).delete()
    WorkerHeartbeat.objects.filter(name__startswith="bench-engine-").delete()
    with db.cursor() as cur:
        # What autovacuum does after a mass delete, given the time: without it each run inserts into the
        # previous runs' dead rows, and the enqueue figure drifts up from run to run (0.8 s to 1.4 s).
        for table in ("jobs_job", "jobs_jobevent"):
            cur.execute(f"VACUUM ANALYZE {table}")
    keys = list(conn.scan_iter(match="rq:*bench*", count=1000))
    keys += [f"rq:job:{i}" for i in ids]  # hashes of jobs never popped (a worker deletes the rest)
    for i in range(0, len(keys), 1000):
        conn.delete(*keys[i : i + 1000])
    conn.srem("rq:queues", *[broker.rq_key(QUEUE, lv) for lv in priority.LEVELS])
    names = [m for m in conn.smembers("rq:workers") if b"bench-engine-" in m]
    if names:
        conn.srem("rq:workers", *names)


def clean_rq(conn: Any) -> None:
    keys = list(conn.scan_iter(match="rq:*", count=5000))
    for i in range(0, len(keys), 1000):
        conn.delete(*keys[i : i + 1000])


def engine_throughput(n: int, processes: int, *, threads: int = 0) -> dict[str, float]:
    """Enqueue n noop jobs (timed), then drain them with `processes` burst workers (each of `threads` threads if given)."""
    from django.db.models import Count, Max, Min, Q

    from jobs import services
    from jobs.models import Job, JobEvent

    t0 = time.perf_counter()
    services.enqueue_many([services.JobSpec(type="noop", queue=QUEUE) for _ in range(n)])
    enqueue_s = time.perf_counter() - t0
    tag = secrets.token_hex(3)
    procs = [engine_worker(f"bench-engine-{tag}-{i}", burst=True, threads=threads) for i in range(processes)]
    wait_all(procs, timeout=max(120.0, n / 20))
    agg = Job.objects.filter(queue=QUEUE).aggregate(
        first=Min("started_at"), last=Max("completed_at"), done=Count("id", filter=Q(status="completed")), total=Count("id")
    )
    events = JobEvent.objects.filter(queue=QUEUE).values("to_status").annotate(c=Count("id"))
    by_status = {e["to_status"]: e["c"] for e in events}
    if agg["done"] != n or agg["total"] != n or by_status != {"waiting": n, "active": n, "completed": n}:
        raise RuntimeError(f"engine run incomplete: {agg}, events {by_status}")
    seconds = _ts(agg["last"]) - _ts(agg["first"])
    return {"jobs_s": n / seconds, "seconds": seconds, "enqueue_s": enqueue_s}


def rq_throughput(url: str, n: int, kind: str) -> dict[str, float]:
    """Enqueue n noop jobs with Queue.enqueue_many and drain them with one burst RQ worker."""
    from redis import Redis
    from rq import Queue
    from rq.job import Job as RQJob

    conn = Redis.from_url(url)
    q = Queue(RQ_QUEUE, connection=conn)
    t0 = time.perf_counter()
    jobs = q.enqueue_many([Queue.prepare_data(NOOP, args=(None, {})) for _ in range(n)])
    enqueue_s = time.perf_counter() - t0
    ids = [j.id for j in jobs]
    wait_all([rq_worker(kind, url, burst=True)], timeout=max(120.0, n / 5))
    fetched = RQJob.fetch_many(ids, connection=conn)
    done = [j for j in fetched if j is not None and j.get_status() == "finished"]
    if len(done) != n:
        raise RuntimeError(f"plain RQ ({kind}) finished {len(done)} of {n} jobs")
    first = min(_ts(j.started_at) for j in done)
    last = max(_ts(j.ended_at) for j in done)
    clean_rq(conn)
    return {"jobs_s": n / (last - first), "seconds": last - first, "enqueue_s": enqueue_s}


def paced(n: int, rate: float, submit: Callable[[], Any]) -> float:
    """Call submit() n times at a steady rate (monotonic clock); returns the achieved rate."""
    start = time.monotonic()
    for i in range(n):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        submit()
    return n / (time.monotonic() - start) if n > 1 else rate


def engine_latency(n: int, rate: float, warmup: int) -> dict[str, float]:
    """One services.enqueue per job at `rate`/s while one engine worker runs; started_at - commit."""
    from django.db import transaction

    from jobs import services
    from jobs.models import Job, WorkerHeartbeat

    name = f"bench-engine-{secrets.token_hex(3)}-lat"
    worker = engine_worker(name, burst=False)
    try:
        wait_until(lambda: WorkerHeartbeat.objects.filter(name=name, stopped_at__isnull=True).exists(), 60, "the engine worker")
        marks: list[tuple[str, float]] = []

        def submit() -> None:
            committed = [0.0]
            with transaction.atomic():
                # Registered first, so it runs first after COMMIT: before the hand-off to Redis.
                transaction.on_commit(lambda: committed.__setitem__(0, time.time()))
                job, _ = services.enqueue(services.JobSpec(type="noop", queue=QUEUE))
            marks.append((job.id, committed[0]))

        paced(warmup, rate, submit)
        del marks[:]
        achieved = paced(n, rate, submit)
        ids = [i for i, _ in marks]
        wait_until(lambda: Job.objects.filter(queue=QUEUE, status="completed").count() >= n + warmup, 60, "latency jobs", 0.2)
    finally:
        stop(worker)
    started = dict(Job.objects.filter(pk__in=ids).values_list("id", "started_at"))
    lat = [(_ts(started[i]) - t) * 1000 for i, t in marks]
    return {"p50_ms": percentile(lat, 0.5), "p95_ms": percentile(lat, 0.95), "p99_ms": percentile(lat, 0.99), "max_ms": max(lat), "rate": achieved}


def rq_latency(url: str, n: int, rate: float, warmup: int) -> dict[str, float]:
    """Queue.enqueue at `rate`/s while one RQ SimpleWorker runs; started_at - enqueued_at."""
    from redis import Redis
    from rq import Queue, Worker
    from rq.job import Job as RQJob

    conn = Redis.from_url(url)
    q = Queue(RQ_QUEUE, connection=conn)
    worker = rq_worker("simple", url, burst=False)
    try:
        wait_until(lambda: len(Worker.all(connection=conn)) > 0, 60, "the RQ worker")
        time.sleep(0.5)
        ids: list[str] = []
        paced(warmup, rate, lambda: q.enqueue(NOOP, None, {}))
        achieved = paced(n, rate, lambda: ids.append(q.enqueue(NOOP, None, {}).id))

        def finished() -> bool:
            last = RQJob.fetch(ids[-1], connection=conn)
            return last.get_status() == "finished" and len(q) == 0

        wait_until(finished, 120, "RQ latency jobs", 0.2)
        time.sleep(0.2)
    finally:
        stop(worker)
    jobs = RQJob.fetch_many(ids, connection=conn)
    lat = [(_ts(j.started_at) - _ts(j.enqueued_at)) * 1000 for j in jobs if j is not None and j.started_at]
    clean_rq(conn)
    if len(lat) != n:
        raise RuntimeError(f"plain RQ latency: {len(lat)} of {n} jobs started")
    return {"p50_ms": percentile(lat, 0.5), "p95_ms": percentile(lat, 0.95), "p99_ms": percentile(lat, 0.99), "max_ms": max(lat), "rate": achieved}


# -- report ---------------------------------------------------------------------------------------


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def report(fig: dict[str, Any], args: argparse.Namespace) -> None:
    def row(label: str, value: float, unit: str, target: str = "") -> None:
        print(f"  {label:<48} {value:>9.1f} {unit:<6} {target}".rstrip())

    def mark(ok: bool) -> str:
        return "ok" if ok else "MISSED"

    t = TARGETS
    print()
    print(f"jobconsole engine bench: {args.jobs} noop jobs, median of {args.repeat} run(s)")
    print("  throughput (first start -> last completion)")
    row("engine, 1 worker process (PostgreSQL)", fig["engine_1proc_jobs_s"], "jobs/s")
    row("engine, 2 worker processes (PostgreSQL)", fig["engine_2proc_jobs_s"], "jobs/s")
    row(f"engine, 1 process of {THREADS} threads (threads mode)", fig["engine_threads_jobs_s"], "jobs/s")
    row("plain RQ SimpleWorker, 1 process, no DB", fig["rq_simple_jobs_s"], "jobs/s")
    row(f"plain RQ Worker (forking), {args.fork_jobs} jobs, no DB", fig["rq_fork_jobs_s"], "jobs/s")
    row("Celery solo pool, 1 process, no DB (bench/peers.py)", fig["celery_solo_jobs_s"], "jobs/s")
    row("Celery solo pool, 2 processes", fig["celery_solo_2proc_jobs_s"], "jobs/s")
    row("Dramatiq, 1 process of 8 threads, no DB", fig["dramatiq_8threads_jobs_s"], "jobs/s")
    row("Dramatiq, 2 processes of 8 threads", fig["dramatiq_2proc_8threads_jobs_s"], "jobs/s")
    print("  ratios")
    r1, r2 = fig["ratio_engine_vs_rq_simple"], fig["ratio_engine_vs_rq_fork"]
    rc, rd = fig["ratio_engine_vs_celery_solo"], fig["ratio_engine_vs_dramatiq"]
    row("engine 1 proc / Celery solo", rc, "x", f"target >= {t['engine_vs_celery_solo']:.1f}  {mark(rc >= t['engine_vs_celery_solo'])}")
    row("engine 1 proc / Dramatiq 8 threads", rd, "x", f"moonshot >= {t['engine_vs_dramatiq']:.1f}  {mark(rd >= t['engine_vs_dramatiq'])}")
    row("engine 2 procs / Celery solo 2 procs", fig["ratio_engine_2proc_vs_celery_2proc"], "x")
    row("engine 1 proc / RQ SimpleWorker", r1, "x", f"target >= {t['engine_vs_rq_simple']:.1f}  {mark(r1 >= t['engine_vs_rq_simple'])}")
    row("engine 1 proc / RQ Worker (forking)", r2, "x", f"target >= {t['engine_vs_rq_fork']:.1f}  {mark(r2 >= t['engine_vs_rq_fork'])}")
    row("engine 2 procs / engine 1 proc", fig["ratio_engine_2proc_vs_1proc"], "x", "(2 cores shared with PostgreSQL and Redis)")
    print("  enqueue")
    e = fig["engine_enqueue_many_s"]
    row(f"services.enqueue_many({args.jobs}) incl. Redis", e, "s", f"target < {t['enqueue_s']:.1f}  {mark(e < t['enqueue_s'])}")
    row(f"RQ Queue.enqueue_many({args.jobs}), for reference", fig["rq_enqueue_many_s"], "s")
    print(f"  enqueue-to-start latency, {args.latency_jobs} jobs at {args.rate:.0f} jobs/s")
    p50, p95 = fig["engine_latency_p50_ms"], fig["engine_latency_p95_ms"]
    row("engine p50 (started_at - commit)", p50, "ms", f"target < {t['latency_p50_ms']:.0f}  {mark(p50 < t['latency_p50_ms'])}")
    row("engine p95", p95, "ms", f"target < {t['latency_p95_ms']:.0f}  {mark(p95 < t['latency_p95_ms'])}")
    row("engine p99 / max", fig["engine_latency_p99_ms"], "ms", f"max {fig['engine_latency_max_ms']:.1f} ms")
    row("RQ SimpleWorker p50 (started_at - enqueued_at)", fig["rq_simple_latency_p50_ms"], "ms")
    row("RQ SimpleWorker p95", fig["rq_simple_latency_p95_ms"], "ms")
    row("RQ SimpleWorker p99 / max", fig["rq_simple_latency_p99_ms"], "ms", f"max {fig['rq_simple_latency_max_ms']:.1f} ms")
    print()
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in fig.items()}, sort_keys=True))


README_START, README_END = "<!-- bench/engine.py table: written by `bench/engine.py --readme README.md` -->", "<!-- /bench/engine.py table -->"


def readme_table(fig: dict[str, Any], args: argparse.Namespace) -> str:
    """The README's table of this run: every figure from the JSON line, none typed by hand."""
    t = TARGETS

    def n(v: float) -> str:
        return f"{v:,.0f}"

    rows = [
        ("engine, 1 worker process", f"{n(fig['engine_1proc_jobs_s'])} jobs/s", ""),
        ("engine, 2 worker processes", f"{n(fig['engine_2proc_jobs_s'])} jobs/s", ""),
        (f"engine, 1 process of {THREADS} threads", f"{n(fig['engine_threads_jobs_s'])} jobs/s", ""),
        ("Celery solo pool, 1 / 2 processes (no database)", f"{n(fig['celery_solo_jobs_s'])} / {n(fig['celery_solo_2proc_jobs_s'])} jobs/s", ""),
        ("Dramatiq, 1 / 2 processes of 8 threads (no database)", f"{n(fig['dramatiq_8threads_jobs_s'])} / {n(fig['dramatiq_2proc_8threads_jobs_s'])} jobs/s", ""),
        ("plain RQ `SimpleWorker` / forking `Worker` (no database)", f"{n(fig['rq_simple_jobs_s'])} / {n(fig['rq_fork_jobs_s'])} jobs/s", ""),
        ("engine 1 process / Celery solo", f"{fig['ratio_engine_vs_celery_solo']:.2f}x", f">= {t['engine_vs_celery_solo']:.1f}"),
        ("engine 1 process / Dramatiq", f"{fig['ratio_engine_vs_dramatiq']:.2f}x", f">= {t['engine_vs_dramatiq']:.1f} (moonshot)"),
        ("engine 1 process / `SimpleWorker`", f"{fig['ratio_engine_vs_rq_simple']:.2f}x", f">= {t['engine_vs_rq_simple']:.1f}"),
        (f"bulk enqueue of {args.jobs:,} jobs, Redis hand-off included", f"{fig['engine_enqueue_many_s']:.2f} s", f"< {t['enqueue_s']:.0f} s"),
        (
            f"enqueue-to-start latency at {fig['latency_rate']:.0f} jobs/s, p50 / p95",
            f"{fig['engine_latency_p50_ms']:.2f} / {fig['engine_latency_p95_ms']:.2f} ms",
            f"< {t['latency_p50_ms']:.0f} / < {t['latency_p95_ms']:.0f} ms",
        ),
        ("the same for `SimpleWorker`, p50 / p95", f"{fig['rq_simple_latency_p50_ms']:.2f} / {fig['rq_simple_latency_p95_ms']:.2f} ms", ""),
    ]
    lines = [
        README_START,
        f"Median of {args.repeat} run(s) of {args.jobs:,} no-op jobs on {fig['cpus']} cores, {time.strftime('%Y-%m-%d')}:",
        "",
        "| figure | value | target |",
        "|---|---|---|",
        *(f"| {a} | {b} | {c} |" for a, b, c in rows),
        README_END,
    ]
    return "\n".join(lines)


def write_readme(path: Path, fig: dict[str, Any], args: argparse.Namespace) -> None:
    """Replace the table between the markers in `path`."""
    text = path.read_text()
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        sys.exit(f"{path} has no bench table markers ({README_START!r} ... {README_END!r})")
    path.write_text(text[:start] + readme_table(fig, args) + text[end + len(README_END):])
    print(f"wrote the table in {path}", file=sys.stderr)


# -- shared by the benches ------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:port."""
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc); 0.0 where unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=10000, help="jobs per throughput run and for bulk enqueue (default 10000)")
    parser.add_argument("--fork-jobs", type=int, default=1000, help="jobs for RQ's slow forking worker (default 1000)")
    parser.add_argument("--rate", type=float, default=200.0, help="jobs/s for the latency runs (default 200)")
    parser.add_argument("--latency-jobs", type=int, default=2000, help="jobs per latency run (default 2000)")
    parser.add_argument("--warmup", type=int, default=50, help="paced jobs before each latency run, not counted (default 50)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of every measurement; figures are medians (default 1)")
    parser.add_argument("--rq-db", type=int, default=9, help="Redis DB for plain RQ, used by nothing else (default 9)")
    parser.add_argument("--peers-db", type=int, default=8, help="Redis DB for Celery and Dramatiq (bench/peers.py), used by nothing else (default 8)")
    parser.add_argument("--only", choices=["engine", "latency"], help="run one part (for profiling)")
    parser.add_argument("--readme", help="rewrite the table between the bench's markers in this file (README.md) from the figures")
    parser.add_argument("--rq-worker", choices=["simple", "fork"], help=argparse.SUPPRESS)
    parser.add_argument("--rq-url", help=argparse.SUPPRESS)
    parser.add_argument("--burst", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.rq_worker:
        setup_django(migrate=False)
        run_rq_worker(args.rq_worker, args.rq_url, args.burst)
        return

    setup_django(migrate=True)
    from redis import Redis

    from jobs.engine import broker

    engine_redis = broker.connection()
    rq_redis_url = rq_url(os.environ["REDIS_URL"], args.rq_db)
    rq_redis = Redis.from_url(rq_redis_url)
    if rq_redis.connection_pool.connection_kwargs.get("db") == engine_redis.connection_pool.connection_kwargs.get("db"):
        sys.exit("--rq-db must differ from REDIS_URL's database")
    foreign = [k for k in rq_redis.scan_iter(count=1000) if not k.startswith(b"rq:")][:3]
    if foreign:
        sys.exit(f"Redis DB {args.rq_db} holds keys that are not RQ's ({foreign}); pick an unused --rq-db")

    import peers

    peers_redis_url = peers.peers_url(os.environ["REDIS_URL"], args.peers_db)
    if args.peers_db in (args.rq_db, engine_redis.connection_pool.connection_kwargs.get("db")):
        sys.exit("--peers-db must differ from --rq-db and REDIS_URL's database")
    runs: dict[str, list[dict[str, float]]] = {k: [] for k in ("e1", "e2", "et", "rs", "rf", "le", "lr", "c1", "c2", "d1", "d2")}
    try:
        clean_engine(engine_redis)
        clean_rq(rq_redis)
        for r in range(args.repeat):
            print(f"run {r + 1}/{args.repeat}", file=sys.stderr, flush=True)
            if args.only in (None, "engine"):
                for procs, threads, key in ((1, 0, "e1"), (2, 0, "e2"), (1, THREADS, "et")):
                    runs[key].append(engine_throughput(args.jobs, procs, threads=threads))
                    clean_engine(engine_redis)
                    print(f"  engine {procs} proc{f' of {threads} threads' if threads else ''}: {runs[key][-1]}", file=sys.stderr, flush=True)
            if args.only is None:
                runs["rs"].append(rq_throughput(rq_redis_url, args.jobs, "simple"))
                print(f"  rq simple: {runs['rs'][-1]}", file=sys.stderr, flush=True)
                runs["rf"].append(rq_throughput(rq_redis_url, args.fork_jobs, "fork"))
                print(f"  rq fork: {runs['rf'][-1]}", file=sys.stderr, flush=True)
                for key, run in (
                    ("c1", lambda: peers.celery_throughput(peers_redis_url, args.jobs)),
                    ("c2", lambda: peers.celery_throughput(peers_redis_url, args.jobs, processes=2)),
                    ("d1", lambda: peers.dramatiq_throughput(peers_redis_url, args.jobs)),
                    ("d2", lambda: peers.dramatiq_throughput(peers_redis_url, args.jobs, processes=2)),
                ):
                    runs[key].append(run())
                    print(f"  {key}: {runs[key][-1]}", file=sys.stderr, flush=True)
            if args.only in (None, "latency"):
                runs["le"].append(engine_latency(args.latency_jobs, args.rate, args.warmup))
                clean_engine(engine_redis)
                print(f"  engine latency: {runs['le'][-1]}", file=sys.stderr, flush=True)
            if args.only is None:
                runs["lr"].append(rq_latency(rq_redis_url, args.latency_jobs, args.rate, args.warmup))
                print(f"  rq latency: {runs['lr'][-1]}", file=sys.stderr, flush=True)
    finally:
        for p in list(_children):
            stop(p)
        clean_engine(engine_redis)
        clean_rq(rq_redis)
    if args.only:
        return
    e1, e2, et, rs, rf, le, lr, c1, c2, d1, d2 = (median_of(runs[k]) for k in ("e1", "e2", "et", "rs", "rf", "le", "lr", "c1", "c2", "d1", "d2"))
    fig: dict[str, Any] = {
        "jobs": args.jobs,
        "fork_jobs": args.fork_jobs,
        "repeat": args.repeat,
        "cpus": os.cpu_count(),
        "engine_1proc_jobs_s": e1["jobs_s"],
        "engine_2proc_jobs_s": e2["jobs_s"],
        "engine_threads_jobs_s": et["jobs_s"],
        "rq_simple_jobs_s": rs["jobs_s"],
        "rq_fork_jobs_s": rf["jobs_s"],
        "ratio_engine_vs_rq_simple": e1["jobs_s"] / rs["jobs_s"],
        "ratio_engine_vs_rq_fork": e1["jobs_s"] / rf["jobs_s"],
        "ratio_engine_2proc_vs_1proc": e2["jobs_s"] / e1["jobs_s"],
        "celery_solo_jobs_s": c1["jobs_s"],
        "celery_solo_2proc_jobs_s": c2["jobs_s"],
        "dramatiq_8threads_jobs_s": d1["jobs_s"],
        "dramatiq_2proc_8threads_jobs_s": d2["jobs_s"],
        "ratio_engine_vs_celery_solo": e1["jobs_s"] / c1["jobs_s"],
        "ratio_engine_vs_dramatiq": e1["jobs_s"] / d1["jobs_s"],
        "ratio_engine_2proc_vs_celery_2proc": e2["jobs_s"] / c2["jobs_s"],
        "engine_enqueue_many_s": statistics.median([r["enqueue_s"] for r in runs["e1"] + runs["e2"] + runs["et"]]),
        "rq_enqueue_many_s": rs["enqueue_s"],
        "latency_rate": args.rate,
        "latency_jobs": args.latency_jobs,
        "engine_latency_p50_ms": le["p50_ms"],
        "engine_latency_p95_ms": le["p95_ms"],
        "engine_latency_p99_ms": le["p99_ms"],
        "engine_latency_max_ms": le["max_ms"],
        "rq_simple_latency_p50_ms": lr["p50_ms"],
        "rq_simple_latency_p95_ms": lr["p95_ms"],
        "rq_simple_latency_p99_ms": lr["p99_ms"],
        "rq_simple_latency_max_ms": lr["max_ms"],
    }
    report(fig, args)
    if args.readme:
        write_readme(Path(args.readme), fig, args)


if __name__ == "__main__":
    main()
