"""Concurrency benchmark: the engine's threads mode against its processes mode, on jobs that wait on I/O.

    DATABASE_URL=postgres://127.0.0.1:5432/h_bench_concurrency REDIS_URL=redis://127.0.0.1:6379/14 \
        .venv/bin/python bench/concurrency.py [--jobs 1000] [--threads 20] [--processes 2] [--delay-ms 100]

Every job is an `http_get` (jobs/samples.py): one urllib GET to a loopback HTTP server in a thread
of this process (ThreadingHTTPServer) that sleeps --delay-ms and answers 200. In one sitting, on the
queue `bench-io` (declared for each worker through JOBS_QUEUES: 1 attempt, 60 s timeout):
  (a) threads mode: `manage.py worker bench-io --threads N`, one process of N job threads, the
      queue in mode "threads" with concurrency N;
  (b) processes mode: `manage.py worker bench-io --processes N`, a supervisor and N worker
      processes of one job at a time each, the queue in mode "processes".
Each worker is started and ready (all its WorkerHeartbeat rows: one per thread, or one per worker
process) before `services.enqueue_many` of --jobs jobs. jobs/s: jobs / (just before the enqueue ->
the last row's completed_at). Memory: the RSS summed over the worker's process tree (the one process,
or the supervisor and its children), from psutil (else /proc/<pid>/status VmRSS), sampled every
0.1 s from the worker's start until the last job completed; the figure is the largest sum. PSS
(/proc/<pid>/smaps_rollup) is sampled alongside: it shares the pages of the libraries that every
process maps among them, where RSS counts them in each process.
Targets (from the issue): threads / processes jobs/s >= 8, RSS threads / processes < 0.5.
It prints a table and ends with one JSON line. The bench owns its database (created and migrated if
missing); the queue's jobs, events and counts, its workers' rows and Redis keys are deleted before,
between and after the two runs, also after a failure.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
for _path in (HERE, HERE.parent):  # bench/ for bench/files.py's `engine`, then the project first: `files` is its app
    sys.path.insert(0, str(_path))

from bench.engine import _ts, bench_env, cpu_seconds, free_port, output, percentile, setup_django, wait_until  # noqa: E402
from bench.files import _procs, clean_bench, halt, spawn, with_children  # noqa: E402

try:
    import psutil

    HAVE_PSUTIL = True
except ImportError:  # /proc is read instead
    HAVE_PSUTIL = False

QUEUE = "bench-io"
TASK = "http_get"
WORKER_PREFIX = "bench-io-"  # the threads worker's name (the supervisor's children take default names)
USER = "bench-concurrency"  # no such user is created; clean_bench deletes it by name
TARGET_JOBS_RATIO = 8.0
TARGET_RSS_RATIO = 0.5
SAMPLE_EVERY = 0.1
MIB = 1024 * 1024


# -- the loopback server the jobs wait on ---------------------------------------------------------


class SlowServer(ThreadingHTTPServer):
    """Answers every GET with 200 after `delay` seconds, one thread per request; counts the requests."""

    daemon_threads = True
    request_queue_size = 128  # the default backlog of 5 would drop connections of 20 threads arriving at once

    def __init__(self, port: int, delay: float) -> None:
        super().__init__(("127.0.0.1", port), SlowHandler)
        self.delay = delay
        self.hits = 0
        self.lock = threading.Lock()


class SlowHandler(BaseHTTPRequestHandler):
    server: SlowServer

    def do_GET(self) -> None:
        time.sleep(self.server.delay)
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        with self.server.lock:
            self.server.hits += 1

    def log_message(self, format: str, *args: Any) -> None:
        pass


# -- memory of a process tree ---------------------------------------------------------------------


def tree(pid: int) -> list[int]:
    """`pid` and every process below it."""
    if not HAVE_PSUTIL:
        return with_children(pid)
    try:
        root = psutil.Process(pid)
        return [pid, *(c.pid for c in root.children(recursive=True))]
    except psutil.NoSuchProcess:
        return []


def rss(pid: int) -> int:
    """Resident set size of one process in bytes (0 once it has exited)."""
    if HAVE_PSUTIL:
        try:
            return int(psutil.Process(pid).memory_info().rss)
        except psutil.NoSuchProcess:
            return 0
    return _proc_kib(f"/proc/{pid}/status", "VmRSS:") * 1024


def pss(pid: int) -> int:
    """Proportional set size of one process in bytes (0 where /proc does not tell)."""
    return _proc_kib(f"/proc/{pid}/smaps_rollup", "Pss:") * 1024


def _proc_kib(path: str, label: str) -> int:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(label):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


class MemoryWatch:
    """Samples the RSS and PSS summed over a process tree every SAMPLE_EVERY seconds in a thread; keeps the largest sums."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.rss_max = self.pss_max = self.samples = 0
        self.most_processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory-watch", daemon=True)
        self._thread.start()

    def sample(self) -> tuple[int, int, int]:
        """(RSS, PSS, processes) of the tree now."""
        pids = tree(self.pid)
        return sum(rss(p) for p in pids), sum(pss(p) for p in pids), len(pids)

    def _run(self) -> None:
        while not self._stop.is_set():
            r, p, n = self.sample()
            self.rss_max, self.pss_max = max(self.rss_max, r), max(self.pss_max, p)
            self.most_processes = max(self.most_processes, n)
            self.samples += 1
            self._stop.wait(SAMPLE_EVERY)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


# -- one run --------------------------------------------------------------------------------------


def queues_env(mode: str, concurrency: int) -> dict[str, str]:
    """JOBS_QUEUES for a worker (and this process): the bench's queues plus `bench-io` in `mode`."""
    queues = json.loads(bench_env()["JOBS_QUEUES"])
    queues[QUEUE] = {"attempts": 1, "timeout": 60, "group": QUEUE, "concurrency": concurrency, "mode": mode}
    return {"JOBS_QUEUES": json.dumps(queues)}


def start_worker(mode: str, count: int, names: list[str]) -> tuple[subprocess.Popen[bytes], MemoryWatch]:
    """The worker of one run and its memory watch; returns once its `count` WorkerHeartbeat rows are there (their names in `names`)."""
    from django.utils import timezone

    from jobs.models import WorkerHeartbeat

    since = timezone.now() - timedelta(seconds=1)
    if mode == "threads":
        extra = ["--threads", str(count), "--name", f"{WORKER_PREFIX}{secrets.token_hex(3)}"]
    else:
        extra = ["--processes", str(count)]  # the supervisor does not pass --name on: its children name themselves
    proc = spawn([sys.executable, "manage.py", "worker", QUEUE, *extra], queues_env(mode, count))
    watch = MemoryWatch(proc.pid)

    def up() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"the {mode} worker exited with {proc.returncode}:\n{output(proc)}")
        rows = WorkerHeartbeat.objects.filter(pid__in=tree(proc.pid), stopped_at__isnull=True, started_at__gte=since)
        names[:] = rows.values_list("name", flat=True)
        return len(names) >= count

    try:
        wait_until(up, 90, f"the {mode} worker's {count} heartbeat rows", every=0.2)
    except BaseException:
        watch.stop()
        halt(proc)
        raise
    time.sleep(1.0)  # the rows are written just before the work loops start
    return proc, watch


def stop_worker(proc: subprocess.Popen[bytes], pids: list[int]) -> None:
    """Warm shutdown of the worker (the supervisor passes SIGTERM on); then any of its processes still there is killed."""
    halt(proc)
    for pid in pids:
        if pid != proc.pid and (psutil.pid_exists(pid) if HAVE_PSUTIL else Path(f"/proc/{pid}").exists()):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def run(mode: str, count: int, n: int, url: str, delay: float, server: SlowServer, names: list[str]) -> dict[str, Any]:
    """One worker in `mode` with `count` threads or processes, n jobs: its figures (its workers' names go to `names`)."""
    from django.db.models import Count, Max, Min, Q

    from jobs import services
    from jobs.engine.states import FINAL
    from jobs.models import Job

    proc, watch = start_worker(mode, count, names)
    pids = tree(proc.pid)
    try:
        ready_rss, ready_pss, _ = watch.sample()
        cpu0 = sum(cpu_seconds(p) for p in pids)
        hits0 = server.hits
        specs = [services.JobSpec(type=TASK, queue=QUEUE, payload={"url": url}) for _ in range(n)]
        t0 = time.time()
        services.enqueue_many(specs)
        enqueue_s = time.time() - t0
        finished = Job.objects.filter(queue=QUEUE, status__in=list(FINAL))

        def done() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"the {mode} worker exited with {proc.returncode}:\n{output(proc)}")
            return finished.count() >= n

        wait_until(done, 60 + 5 * n * delay / count, f"{n} jobs in {mode} mode", every=0.1)
        cpu_s = sum(cpu_seconds(p) for p in pids) - cpu0
    finally:
        watch.stop()
        stop_worker(proc, pids)
    agg = Job.objects.filter(queue=QUEUE).aggregate(
        first=Min("started_at"), last=Max("completed_at"), completed=Count("id", filter=Q(status="completed")), total=Count("id")
    )
    if agg["completed"] != n or agg["total"] != n:
        failed = Job.objects.filter(queue=QUEUE).exclude(status="completed").values_list("status", "failed_reason")[:3]
        raise RuntimeError(f"{mode} run: {agg['completed']} of {n} jobs completed ({agg['total']} rows); for example {list(failed)}")
    spans = [(_ts(s), _ts(c)) for s, c in Job.objects.filter(queue=QUEUE).values_list("started_at", "completed_at")]
    seconds = _ts(agg["last"]) - t0
    runs_ms = [(c - s) * 1000 for s, c in spans]
    per_worker = sorted(Job.objects.filter(queue=QUEUE).values("worker_name").annotate(c=Count("id")).values_list("c", flat=True))
    return {
        "jobs_s": n / seconds,
        "s": seconds,
        "start_to_end_jobs_s": n / (_ts(agg["last"]) - _ts(agg["first"])),
        "enqueue_s": enqueue_s,
        "ideal_jobs_s": count / delay,
        "run_p50_ms": statistics.median(runs_ms),
        "run_p95_ms": percentile(runs_ms, 0.95),
        "most_at_once": most_at_once(spans),
        "workers_used": len(per_worker),
        "rss_max_mib": watch.rss_max / MIB,
        "pss_max_mib": watch.pss_max / MIB,
        "rss_ready_mib": ready_rss / MIB,
        "pss_ready_mib": ready_pss / MIB,
        "processes": watch.most_processes,
        "memory_samples": watch.samples,
        "cpu_ms_per_job": cpu_s * 1000 / n,
        "requests": server.hits - hits0,
    }


def most_at_once(spans: list[tuple[float, float]]) -> int:
    """The most (started_at, completed_at) intervals that overlap at one moment."""
    edges = sorted([(s, 1) for s, _ in spans] + [(c, -1) for _, c in spans])  # at a tie an end (-1) sorts first
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


# -- cleanup --------------------------------------------------------------------------------------


def clean(conn: Any, names: list[str]) -> None:
    """The queue's jobs, events, counts and Redis keys, and the rows and Redis keys of the workers named (or prefixed)."""
    from jobs.models import WorkerHeartbeat

    clean_bench(conn, (QUEUE,), user=USER, worker_prefix=WORKER_PREFIX, redis_patterns=(f"rq:*{QUEUE}*",))
    if names:  # the processes mode's workers, named by themselves (host.pid.random)
        WorkerHeartbeat.objects.filter(name__in=names).delete()
        keys = [k for name in names for k in conn.scan_iter(match=f"rq:*{name}*", count=1000)]
        if keys:
            conn.delete(*keys)
        conn.srem("rq:workers", *[f"rq:worker:{name}" for name in names])


# -- report ---------------------------------------------------------------------------------------


def report(fig: dict[str, Any]) -> None:
    def row(label: str, value: float, unit: str, note: str = "", digits: int = 1) -> None:
        print(f"    {label:<46} {value:>9.{digits}f} {unit:<7} {note}".rstrip())

    def mark(ok: bool) -> str:
        return "ok" if ok else "MISSED"

    print()
    print(
        f"jobconsole concurrency bench: {fig['jobs']} {TASK} jobs, each waiting {fig['delay_ms']:g} ms on a loopback HTTP server, "
        f"{fig['cpus']} CPUs, memory from {fig['memory_source']}"
    )
    for key, title in (("threads", f"threads mode: 1 process, --threads {fig['threads_n']}"), ("processes", f"processes mode: supervisor + --processes {fig['processes_n']}")):
        f = fig[key]
        print(f"  {title}")
        row("first enqueue -> last completed_at", f["jobs_s"], "jobs/s", f"{f['s']:.2f} s; ideal {f['ideal_jobs_s']:.0f} jobs/s")
        row("first started_at -> last completed_at", f["start_to_end_jobs_s"], "jobs/s", f"enqueue_many {f['enqueue_s']:.2f} s")
        row("job run (started_at -> completed_at) p50", f["run_p50_ms"], "ms", f"p95 {f['run_p95_ms']:.1f} ms")
        row("jobs running at once, most", f["most_at_once"], "", f"{f['workers_used']} workers ran jobs", digits=0)
        row(f"RSS of the worker tree ({f['processes']} process{'es' if f['processes'] > 1 else ''}), max", f["rss_max_mib"], "MiB", f"{f['rss_ready_mib']:.1f} MiB when ready")
        row("PSS of the same, max", f["pss_max_mib"], "MiB", f"{f['pss_ready_mib']:.1f} MiB when ready")
        row("worker CPU per job", f["cpu_ms_per_job"], "ms")
    print("  threads / processes")
    rj, rr = fig["ratio_jobs_s"], fig["ratio_rss"]
    row("jobs/s", rj, "x", f"target >= {TARGET_JOBS_RATIO:g}  {mark(fig['target_jobs_s_met'])}", digits=2)
    row("RSS, max", rr, "x", f"target < {TARGET_RSS_RATIO:g}  {mark(fig['target_rss_met'])}", digits=2)
    row("PSS, max (for reference)", fig["ratio_pss"], "x", digits=2)
    print()
    print(json.dumps(rounded(fig), sort_keys=True))


def rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=1000, help="jobs per run (default 1000)")
    parser.add_argument("--threads", type=int, default=20, help="job threads of the threads-mode worker (default 20)")
    parser.add_argument("--processes", type=int, default=2, help="worker processes of the processes-mode worker (default 2)")
    parser.add_argument("--delay-ms", type=float, default=100.0, help="how long the HTTP server waits before it answers (default 100)")
    args = parser.parse_args()
    if min(args.jobs, args.threads, args.processes) < 1 or args.delay_ms < 0:
        sys.exit("--jobs, --threads and --processes must be at least 1, --delay-ms at least 0")

    os.environ.update(queues_env("processes", args.processes))  # this process only enqueues: the mode is the workers'
    setup_django(migrate=True)
    from jobs.engine import broker

    conn = broker.connection()
    delay = args.delay_ms / 1000
    server = SlowServer(free_port(), delay)
    threading.Thread(target=server.serve_forever, name="slow-server", daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    names: list[str] = []
    fig: dict[str, Any] = {
        "jobs": args.jobs, "threads_n": args.threads, "processes_n": args.processes, "delay_ms": args.delay_ms,
        "cpus": os.cpu_count(), "memory_source": "psutil" if HAVE_PSUTIL else "/proc VmRSS",
    }
    try:
        clean(conn, [])
        for mode, count in (("threads", args.threads), ("processes", args.processes)):
            print(f"{mode} mode: {args.jobs} jobs ...", file=sys.stderr, flush=True)
            fig[mode] = run(mode, count, args.jobs, url, delay, server, names)
            clean(conn, names)
            names.clear()
            print(f"  {fig[mode]}", file=sys.stderr, flush=True)
    finally:
        for p in list(_procs):
            halt(p)
        clean(conn, names)
        server.shutdown()
        server.server_close()
    t, p = fig["threads"], fig["processes"]
    fig["ratio_jobs_s"] = t["jobs_s"] / p["jobs_s"]
    fig["ratio_rss"] = t["rss_max_mib"] / p["rss_max_mib"]
    fig["ratio_pss"] = t["pss_max_mib"] / p["pss_max_mib"] if p["pss_max_mib"] else 0.0
    fig["target_jobs_s_met"] = fig["ratio_jobs_s"] >= TARGET_JOBS_RATIO
    fig["target_rss_met"] = fig["ratio_rss"] < TARGET_RSS_RATIO
    report(fig)


if __name__ == "__main__":
    main()
