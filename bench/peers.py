"""The peers of bench/engine.py: Celery's solo worker and Dramatiq's worker on a no-op task, on the same Redis.

    .venv/bin/pip install '.[bench]'      # celery[redis], dramatiq[redis]: never runtime dependencies
    REDIS_URL=redis://127.0.0.1:6379/10 .venv/bin/python bench/peers.py [--jobs 10000] [--db 8]

bench/engine.py imports `celery_throughput` and `dramatiq_throughput` and runs them in the same
sitting as the engine. Each enqueues n messages first (timed), then starts its worker and waits
for the last task. The task counts itself with one INCR on the peers' Redis DB (one round trip
more than the engine's no-op, which writes nothing); the first and the n-th record their time, so
jobs/s is n / (first task start -> n-th task end), as the engine's is measured from its rows. The
peers' Redis DB must hold nothing else: it is flushed before and after.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
CELERY_QUEUE = "bench-celery"
DRAMATIQ_QUEUE = "bench-dramatiq"
COUNTER, FIRST, LAST = "bench-peers:count", "bench-peers:first", "bench-peers:last"


def peers_url(redis_url: str, db: int) -> str:
    parts = urlsplit(redis_url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", "", ""))


def _url() -> str:
    return os.environ["BENCH_PEERS_REDIS_URL"]


def count(n: int) -> None:
    """The task body of both peers: count this run, and note when the first and the n-th ran."""
    conn = _redis()
    done = conn.incr(COUNTER)
    if done == 1:
        conn.set(FIRST, time.time())
    if done == n:
        conn.set(LAST, time.time())


_conn: Any = None


def _redis() -> Any:
    global _conn
    if _conn is None:
        from redis import Redis

        _conn = Redis.from_url(_url())
    return _conn


# -- Celery ---------------------------------------------------------------------------------------


def celery_app() -> Any:
    from celery import Celery

    app = Celery("bench_peers", broker=_url())
    app.conf.update(task_ignore_result=True, worker_prefetch_multiplier=4, task_acks_late=False, broker_connection_retry_on_startup=True)
    app.task(name="bench.noop", ignore_result=True)(count)
    return app


# -- Dramatiq -------------------------------------------------------------------------------------


def dramatiq_actor() -> Any:
    import dramatiq
    from dramatiq.brokers.redis import RedisBroker

    broker = RedisBroker(url=_url())
    dramatiq.set_broker(broker)
    return dramatiq.actor(queue_name=DRAMATIQ_QUEUE, actor_name="bench_noop", max_retries=0)(count)


if os.environ.get("BENCH_PEERS_WORKER") == "dramatiq":
    noop_actor = dramatiq_actor()  # `dramatiq bench.peers` imports this module to find its actor
if os.environ.get("BENCH_PEERS_WORKER") == "celery":
    app = celery_app()  # `celery -A bench.peers worker` finds it here


# -- measurements ---------------------------------------------------------------------------------


def _spawn(argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    log = tempfile.TemporaryFile()
    p = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    p.log = log  # type: ignore[attr-defined]
    return p


def _wait_last(p: subprocess.Popen[bytes], n: int, timeout: float) -> tuple[float, float]:
    conn = _redis()
    deadline = time.monotonic() + timeout
    while conn.get(LAST) is None:
        if p.poll() is not None or time.monotonic() > deadline:
            p.log.seek(0)  # type: ignore[attr-defined]
            raise RuntimeError(f"{p.args!r} did not run {n} tasks (ran {conn.get(COUNTER)}):\n{p.log.read().decode(errors='replace')[-3000:]}")  # type: ignore[attr-defined]
        time.sleep(0.02)
    return float(conn.get(FIRST)), float(conn.get(LAST))


def _stop(p: subprocess.Popen[bytes]) -> None:
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _env(url: str, worker: str) -> dict[str, str]:
    return {**os.environ, "BENCH_PEERS_REDIS_URL": url, "BENCH_PEERS_WORKER": worker, "PYTHONPATH": str(ROOT)}


def celery_throughput(url: str, n: int, *, processes: int = 1) -> dict[str, float]:
    """n no-op tasks through Celery's solo pool (`processes` workers), enqueued first."""
    os.environ["BENCH_PEERS_REDIS_URL"] = url
    _redis().flushdb()
    task = celery_app().tasks["bench.noop"]
    t0 = time.perf_counter()
    with task.app.producer_or_acquire() as producer:
        for _ in range(n):
            task.apply_async(args=(n,), queue=CELERY_QUEUE, producer=producer)
    enqueue_s = time.perf_counter() - t0
    celery = str(Path(sys.executable).parent / "celery")
    argv = [celery, "-A", "bench.peers", "worker", "--pool", "solo", "-Q", CELERY_QUEUE, "-l", "WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat"]
    procs = [_spawn([*argv, "-n", f"bench{i}@%h"], _env(url, "celery")) for i in range(processes)]
    try:
        first, last = _wait_last(procs[0], n, timeout=max(120.0, n / 50))
    finally:
        for p in procs:
            _stop(p)
        _redis().flushdb()
    return {"jobs_s": n / (last - first), "seconds": last - first, "enqueue_s": enqueue_s}


def dramatiq_throughput(url: str, n: int, *, processes: int = 1, threads: int = 8) -> dict[str, float]:
    """n no-op messages through Dramatiq's worker (`processes` processes of `threads` threads), enqueued first."""
    os.environ["BENCH_PEERS_REDIS_URL"] = url
    _redis().flushdb()
    actor = dramatiq_actor()
    t0 = time.perf_counter()
    for _ in range(n):
        actor.send(n)
    enqueue_s = time.perf_counter() - t0
    dramatiq = str(Path(sys.executable).parent / "dramatiq")
    p = _spawn([dramatiq, "bench.peers", "--processes", str(processes), "--threads", str(threads), "--queues", DRAMATIQ_QUEUE], _env(url, "dramatiq"))
    try:
        first, last = _wait_last(p, n, timeout=max(120.0, n / 50))
    finally:
        _stop(p)
        _redis().flushdb()
    return {"jobs_s": n / (last - first), "seconds": last - first, "enqueue_s": enqueue_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=10000)
    parser.add_argument("--db", type=int, default=8, help="the peers' Redis DB, used by nothing else (default 8)")
    args = parser.parse_args()
    url = peers_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"), args.db)
    figures = {
        "celery_solo": celery_throughput(url, args.jobs),
        "celery_solo_2proc": celery_throughput(url, args.jobs, processes=2),
        "dramatiq_8threads": dramatiq_throughput(url, args.jobs),
        "dramatiq_2proc_8threads": dramatiq_throughput(url, args.jobs, processes=2),
    }
    for name, fig in figures.items():
        print(f"{name:28s} {fig['jobs_s']:8.0f} jobs/s   enqueue {fig['enqueue_s']:.2f} s", file=sys.stderr)
    print(json.dumps({k: round(v["jobs_s"], 1) for k, v in figures.items()}))


if __name__ == "__main__":
    main()
