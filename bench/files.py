"""Files benchmark: seed 3's uploads through the web server (uvicorn) and the file-upload queue, on local storage and on S3.

    DATABASE_URL=postgres://127.0.0.1:5432/h_bench_files REDIS_URL=redis://127.0.0.1:6379/11 \
        .venv/bin/python bench/files.py [--files 200] [--size-mb 1] [--clients 8] [--storage local,s3]

For each storage (local: a temporary MEDIA_ROOT; s3: SeaweedFS's `weed server -s3` on loopback, as
tests/files/weed.py starts it, with its data in a temporary directory) it starts the web server
(uvicorn, one process, launcher.web.command) and, in turn, two sets of 2 engine workers on the file
queues (`manage.py worker file-upload file-process file-delete`): first with the queues as declared
(file-upload's rate limit of 10 jobs/s across workers), then with that rate limit lifted through
JOBS_QUEUES, so that the storage pipeline itself is measured. --clients threads send --files files
of --size-mb random bytes (the same files in every part):
  (a) POST /api/files/upload-async (multipart `file`, bearer API key), once per worker set: request
      latency p50/p95, and the time from the first POST until every row is `stored` (the rows'
      updated_at, same clock), MB/s, with the jobs' queue wait and run time;
  (b) POST /api/files/upload (synchronous): latency p50/p95 and the time until the last answer;
  (c) the floor: the same bytes written by bare file writes (local) or boto3 put_object (s3) from
      --clients threads in this process;
  (d) to see where the time goes, before any worker runs: the services called in this process
      without HTTP, one client at a time over HTTP (upload-async, upload, and a POST without API
      key, answered 401 once Django has read the body), the same POSTs without API key from
      --clients threads; and during (a) and (b) the CPU seconds of the web server, the workers,
      this process (the clients), PostgreSQL, Redis, weed and the rest of the machine.
Targets: upload-async p95 < 50 ms; all files stored within 1.5 x the floor's time.
It prints a table and ends with one JSON line. Its user, rows, jobs, Redis keys, processes and
temporary directories are removed at the end, also after a failure.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from engine import ROOT, _ts, bench_env, cpu_seconds, free_port, output, percentile, port_open, setup_django, stop, wait_until

FILE_QUEUES = ("file-upload", "file-process", "file-delete")
USER = "bench-files"
WORKER_PREFIX = "bench-files-"
TARGET_P95_MS = 50.0
TARGET_FLOOR_RATIO = 1.5
WARMUP = 8
SINGLE = 20  # calls and uploads one at a time

_procs: list[subprocess.Popen[bytes]] = []


# -- processes ------------------------------------------------------------------------------------


def spawn(args: list[str], extra: dict[str, str], *, lift_rate_limit: bool = False) -> subprocess.Popen[bytes]:
    """A child with the bench's environment plus `extra` (storage); its output goes to a temporary file, shown if it fails."""
    env = {**bench_env(), **extra}
    if lift_rate_limit:
        queues = json.loads(env["JOBS_QUEUES"])
        queues["file-upload"] = {**queues.get("file-upload", {}), "rate_limit": None}
        env["JOBS_QUEUES"] = json.dumps(queues)
    log = tempfile.TemporaryFile()
    p = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    p.log = log  # type: ignore[attr-defined]
    _procs.append(p)
    return p


def halt(p: subprocess.Popen[bytes]) -> None:
    stop(p)
    if p in _procs:
        _procs.remove(p)


def start_workers(extra: dict[str, str], tag: str, *, lift_rate_limit: bool) -> list[subprocess.Popen[bytes]]:
    """2 engine worker processes on the three file queues; returns once both have registered."""
    from jobs.models import WorkerHeartbeat

    names = [f"{WORKER_PREFIX}{tag}-{i}" for i in range(2)]
    procs = [spawn([sys.executable, "manage.py", "worker", *FILE_QUEUES, "--name", n], extra, lift_rate_limit=lift_rate_limit) for n in names]

    def up() -> bool:
        for p in procs:
            if p.poll() is not None:
                raise RuntimeError(f"a worker exited:\n{output(p)}")
        return WorkerHeartbeat.objects.filter(name__in=names, stopped_at__isnull=True).count() == len(names)

    wait_until(up, 60, "the workers", every=0.2)
    return procs


# -- CPU ------------------------------------------------------------------------------------------


def with_children(pid: int) -> list[int]:
    """`pid` and every process below it (uvicorn --workers runs the requests in children of its supervisor)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # exited meanwhile
    found, todo = [pid], [pid]
    while todo:
        pid = todo.pop()
        kids = [child for child, parent in parents.items() if parent == pid]
        found += kids
        todo += kids
    return found


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, all CPUs (Linux /proc/stat); zeros where unavailable."""
    try:
        ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return 0.0, 0.0
    hz = os.sysconf("SC_CLK_TCK")
    return (sum(ticks) - ticks[3] - ticks[4]) / hz, sum(ticks) / hz  # idle and iowait are not busy


SERVICES = {"postgres": "postgresql", "redis-server": "redis", "weed": "weed"}  # process name -> figure


def services_cpu() -> dict[str, float]:
    """CPU seconds so far of every PostgreSQL, Redis and weed process on the machine, by figure name."""
    hz = os.sysconf("SC_CLK_TCK")
    found = dict.fromkeys(SERVICES.values(), 0.0)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, tail = stat.read_text().rsplit(")", 1)
        except OSError:
            continue  # exited meanwhile
        name = SERVICES.get(head.split("(", 1)[-1])
        if name:
            fields = tail.split()
            found[name] += (int(fields[11]) + int(fields[12])) / hz
    return found


class CpuWatch:
    """CPU seconds spent from now on by the web server, the workers, this process (the clients), PostgreSQL, Redis, weed and the rest."""

    def __init__(self, server: subprocess.Popen[bytes], workers: list[subprocess.Popen[bytes]]) -> None:
        self.pids = {"server": with_children(server.pid), "workers": [w.pid for w in workers]}
        self.start = self._now()

    def _now(self) -> dict[str, float]:
        own = os.times()
        busy, total = machine_cpu()
        now = {name: sum(cpu_seconds(p) for p in pids) for name, pids in self.pids.items()}
        return {**now, **services_cpu(), "clients": own.user + own.system, "busy": busy, "total": total}

    def per_file(self, n: int) -> dict[str, float]:
        """ms of CPU per file of each part (`cpu_*_ms`), and the share of the machine's CPUs that was busy."""
        end = self._now()
        d = {k: end[k] - self.start[k] for k in end}
        parts = ["server", "workers", "clients", *SERVICES.values()]
        d["other"] = max(d["busy"] - sum(d[k] for k in parts), 0.0)  # the kernel's own work, other processes, backends that exited
        return {
            **{f"cpu_{k}_ms": round(d[k] * 1000 / n, 1) for k in [*parts, "other"]},
            "machine_busy": round(d["busy"] / d["total"], 3) if d["total"] else 0.0,
        }


# -- clients --------------------------------------------------------------------------------------


@dataclass
class Posted:
    """One batch of POSTs: latency of each (ms), the answers, and the batch's clock."""

    latencies_ms: list[float]
    bodies: list[dict[str, Any]]
    t0_wall: float  # time.time() just before the first POST
    elapsed_s: float  # first POST sent -> last answer received

    def ids(self) -> list[str]:
        return [str(b["fileId"]) for b in self.bodies]

    def p(self, q: float) -> float:
        return round(percentile(self.latencies_ms, q), 2)


def encode(payloads: list[bytes]) -> list[tuple[bytes, str]]:
    """Each file as a multipart body (field `file`) and its Content-Type, built once so the clients only send."""
    from urllib3 import encode_multipart_formdata

    return [encode_multipart_formdata({"file": (f"bench-{i:04d}.bin", data, "application/octet-stream")}) for i, data in enumerate(payloads)]


def post_all(url: str, bodies: list[tuple[bytes, str]], clients: int, api_key: str | None, expect: set[int]) -> Posted:
    """POST every body from `clients` threads (one keep-alive session each); the latency of each request."""
    import requests

    local = threading.local()
    sessions: list[Any] = []
    lock = threading.Lock()

    def one(i: int) -> tuple[float, dict[str, Any]]:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
            with lock:
                sessions.append(session)
        body, content_type = bodies[i]
        headers = {"Content-Type": content_type}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        t = time.perf_counter()
        r = session.post(url, data=body, headers=headers, timeout=300)
        ms = (time.perf_counter() - t) * 1000
        if r.status_code not in expect:
            raise RuntimeError(f"POST {url} answered {r.status_code}: {r.text[:500]}")
        return ms, (r.json() if r.content else {})

    t0_wall, t0 = time.time(), time.perf_counter()
    try:
        with ThreadPoolExecutor(clients) as pool:
            results = list(pool.map(one, range(len(bodies))))
    finally:
        for s in sessions:
            s.close()
    return Posted(latencies_ms=[r[0] for r in results], bodies=[r[1] for r in results], t0_wall=t0_wall, elapsed_s=time.perf_counter() - t0)


def wait_stored(ids: list[str], timeout: float) -> None:
    """Poll the rows until every one is `stored` and its file-upload job completed; a `failed` one is an error."""
    from django.db.models import Count

    from files.models import StoredFile
    from jobs.models import Job

    deadline = time.monotonic() + timeout
    while True:
        counts = dict(StoredFile.objects.filter(pk__in=ids).values_list("status").annotate(c=Count("id")))
        if counts.get("stored", 0) == len(ids) and Job.objects.filter(group_ref__in=ids, status="completed").count() == len(ids):
            return
        if counts.get("failed"):
            reasons = list(StoredFile.objects.filter(pk__in=ids, status="failed").values_list("failed_reason", flat=True)[:3])
            raise RuntimeError(f"{counts['failed']} uploads failed: {reasons}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"not all stored within {timeout:.0f} s: {counts}")
        time.sleep(0.1)


def async_figures(posted: Posted, workers: int, mb: float) -> dict[str, Any]:
    """Request latency, the time until all stored (rows' updated_at), and the jobs' queue wait and run time."""
    from files.models import StoredFile
    from jobs.models import Job

    ids = posted.ids()
    stored_at = [_ts(t) for t in StoredFile.objects.filter(pk__in=ids).values_list("updated_at", flat=True)]
    jobs = list(Job.objects.filter(group_ref__in=ids, queue="file-upload").values_list("created_at", "started_at", "completed_at", "worker_name", "status"))
    if len(jobs) != len(ids) or any(j[4] != "completed" for j in jobs):
        raise RuntimeError(f"{len(jobs)} file-upload jobs for {len(ids)} files, statuses {sorted({j[4] for j in jobs})}")
    wait = [(_ts(j[1]) - _ts(j[0])) * 1000 for j in jobs]
    run = [(_ts(j[2]) - _ts(j[1])) * 1000 for j in jobs]
    first_start, last_end = min(_ts(j[1]) for j in jobs), max(_ts(j[2]) for j in jobs)
    per_worker: dict[str, int] = {}
    for j in jobs:
        per_worker[j[3]] = per_worker.get(j[3], 0) + 1
    all_stored = max(stored_at) - posted.t0_wall
    return {
        "p50_ms": posted.p(0.5), "p95_ms": posted.p(0.95), "max_ms": round(max(posted.latencies_ms), 2),
        "answered_s": round(posted.elapsed_s, 3), "all_stored_s": round(all_stored, 3), "mb_s": round(mb / all_stored, 2),
        "queue_wait_p50_ms": round(percentile(wait, 0.5), 1), "queue_wait_max_ms": round(max(wait), 1),
        "job_run_p50_ms": round(percentile(run, 0.5), 1), "job_run_p95_ms": round(percentile(run, 0.95), 1),
        "jobs_first_start_s": round(first_start - posted.t0_wall, 3), "jobs_last_end_s": round(last_end - posted.t0_wall, 3),
        "workers_busy": round(sum(run) / 1000 / (workers * max(last_end - first_start, 1e-9)), 3),
        "jobs_per_worker": sorted(per_worker.values()),
    }


# -- floors ---------------------------------------------------------------------------------------


def floor_local(root: Path, payloads: list[bytes], clients: int) -> float:
    """Bare file writes of the same bytes, one file each, `clients` threads."""
    root.mkdir(parents=True)

    def one(i: int) -> None:
        with open(root / f"floor-{i:05d}.bin", "wb") as fh:
            fh.write(payloads[i])

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, range(len(payloads))))
    return time.perf_counter() - t0


def s3_client(endpoint: str, clients: int) -> Any:
    """A boto3 client configured as config.settings.build_storages configures django-storages' for an S3-compatible endpoint."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1",
        config=Config(
            s3={"addressing_style": "path"}, signature_version="s3v4", max_pool_connections=max(10, clients),
            request_checksum_calculation="when_required", response_checksum_validation="when_required",
        ),
    )


def floor_s3(client: Any, bucket: str, payloads: list[bytes], clients: int) -> float:
    """Bare put_object of the same bytes, `clients` threads sharing one client (warmed by one put first)."""
    client.put_object(Bucket=bucket, Key="floor/warm", Body=b"warm")

    def one(i: int) -> None:
        client.put_object(Bucket=bucket, Key=f"floor/{i:05d}.bin", Body=payloads[i], ContentType="application/octet-stream")

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, range(len(payloads))))
    return time.perf_counter() - t0


# -- the services alone ---------------------------------------------------------------------------


def service_alone(stage_env: dict[str, str], user: Any, api_key: str, payloads: list[bytes]) -> tuple[dict[str, float], list[str]]:
    """The steps of an upload called in this process on the same storage, one at a time, no HTTP: median ms of SINGLE calls.

    Returns the figures and the ids of the files that upload_async staged (their jobs wait for the workers).
    """
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.test import override_settings

    from config.env import read_env
    from config.settings import build_storages
    from files import services, storage
    from jobs.api.auth import user_for_key

    env = read_env({**os.environ, **stage_env})
    staged: list[str] = []

    def timed(call: Callable[[Any], Any]) -> float:
        times = []
        for i in range(SINGLE + 2):  # 2 untimed: connections, the storage client
            upload = SimpleUploadedFile(f"svc-{i:04d}.bin", payloads[i % len(payloads)], "application/octet-stream")
            t = time.perf_counter()
            call(upload)
            times.append((time.perf_counter() - t) * 1000)
        return round(statistics.median(times[2:]), 2)

    def queued(upload: Any) -> None:
        staged.append(services.upload_async(owner=user, upload=upload)[0].id)

    with override_settings(STORAGES=build_storages(env), MEDIA_ROOT=env.media_root):
        figures = {
            "api_key_ms": timed(lambda _: user_for_key(api_key)),
            "digest_ms": timed(lambda upload: storage.digest(upload)),
            "storage_save_ms": timed(lambda upload: storage.save(f"files/bench-save/{uuid.uuid4().hex}", upload, content_type="application/octet-stream")),
            "upload_ms": timed(lambda upload: services.upload(owner=user, upload=upload)),
            "upload_async_ms": timed(queued),
        }
    return figures, staged


# -- one storage ----------------------------------------------------------------------------------


@dataclass
class Stage:
    """A storage and what runs on it: the web server and the current workers."""

    kind: str
    env: dict[str, str]
    server: subprocess.Popen[bytes] | None = None
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)


def measure_storage(
    stage: Stage, args: argparse.Namespace, user: Any, api_key: str, bodies: list[tuple[bytes, str]], payloads: list[bytes], floor: Callable[[], float],
) -> dict[str, Any]:
    mb = len(payloads) * args.size_mb
    n = len(payloads)
    port = free_port()
    from launcher import web

    stage.server = spawn(web.command("127.0.0.1", port, access_log=False, processes=args.web_processes), stage.env)
    server = stage.server
    wait_until(lambda: port_open(port) or server.poll() is not None, 30, "the web server")
    if server.poll() is not None:
        raise RuntimeError(f"the web server exited:\n{output(server)}")
    base = f"http://127.0.0.1:{port}/api/files"
    routes = {"upload_async": ("upload-async", api_key, {202}), "upload": ("upload", api_key, {201}), "no_key": ("upload-async", None, {401, 403})}
    fig: dict[str, Any] = {}

    def post(route: str, batch: list[tuple[bytes, str]], clients: int) -> Posted:
        path, key, expect = routes[route]
        return post_all(f"{base}/{path}", batch, clients, key, expect)

    # Before any worker runs (upload-async's jobs wait for them): the steps of an upload in this
    # process, then the HTTP path from one client at a time, then the POSTs without API key.
    fig["service"], pending = service_alone(stage.env, user, api_key, payloads)
    warm = bodies[:WARMUP]
    for route in routes:
        posted = post(route, warm, args.clients)  # imports, connections, the storage client
        pending += posted.ids() if route == "upload_async" else []
    fig["one_client"] = {"files": SINGLE}
    for route in routes:
        posted = post(route, bodies[:SINGLE], 1)
        fig["one_client"][route] = {"p50_ms": posted.p(0.5), "p95_ms": posted.p(0.95)}
        pending += posted.ids() if route == "upload_async" else []
    watch = CpuWatch(server, [])
    bare = post("no_key", bodies, args.clients)
    fig["no_key"] = {"p50_ms": bare.p(0.5), "p95_ms": bare.p(0.95), "answered_s": round(bare.elapsed_s, 3), **watch.per_file(n)}

    def upload_async() -> dict[str, Any]:
        watch = CpuWatch(server, stage.workers)
        posted = post("upload_async", bodies, args.clients)
        wait_stored(posted.ids(), timeout=600)
        return {**async_figures(posted, len(stage.workers), mb), **watch.per_file(n)}

    # The queues as declared: file-upload allows 10 jobs a second across workers.
    stage.workers = start_workers(stage.env, f"{stage.kind}-declared", lift_rate_limit=False)
    wait_stored(pending, timeout=300)
    time.sleep(1.0)  # the rate limiter's window (1 s) holds none of those jobs any more
    fig["async_declared"] = upload_async()
    for w in stage.workers:
        halt(w)

    # The same with file-upload's rate limit lifted for these workers (JOBS_QUEUES).
    stage.workers = start_workers(stage.env, f"{stage.kind}-lifted", lift_rate_limit=True)
    warmed = post("upload_async", warm, args.clients)
    wait_stored(warmed.ids(), timeout=120)
    fig["async_lifted"] = upload_async()

    watch = CpuWatch(server, stage.workers)
    sync = post("upload", bodies, args.clients)
    fig["sync"] = {
        "p50_ms": sync.p(0.5), "p95_ms": sync.p(0.95), "max_ms": round(max(sync.latencies_ms), 2),
        "all_stored_s": round(sync.elapsed_s, 3), "mb_s": round(mb / sync.elapsed_s, 2), **watch.per_file(n),
    }
    for w in stage.workers:
        halt(w)
    stage.workers = []
    halt(server)
    stage.server = None

    floor_s = floor()
    fig["floor_s"] = round(floor_s, 3)
    fig["floor_mb_s"] = round(mb / floor_s, 1)
    for label in ("declared", "lifted"):
        a = fig[f"async_{label}"]
        a["target_p95_ok"] = a["p95_ms"] < TARGET_P95_MS
        a["ratio_p50_vs_sync"] = round(a["p50_ms"] / fig["sync"]["p50_ms"], 3)
        a["ratio_all_stored_vs_sync"] = round(a["all_stored_s"] / fig["sync"]["all_stored_s"], 3)
        a["ratio_all_stored_vs_floor"] = round(a["all_stored_s"] / floor_s, 2)
        a["target_floor_ok"] = a["ratio_all_stored_vs_floor"] <= TARGET_FLOOR_RATIO
    return fig


# -- report ---------------------------------------------------------------------------------------


def report(kind: str, fig: dict[str, Any], args: argparse.Namespace) -> None:
    n, clients = args.files, args.clients

    def mark(ok: bool) -> str:
        return "ok" if ok else "over"

    def cpu(f: dict[str, Any]) -> str:
        weed = f", weed {f['cpu_weed_ms']:.1f}" if kind == "s3" else ""
        return (f"CPU ms/file: server {f['cpu_server_ms']:.1f}, workers {f['cpu_workers_ms']:.1f}, clients {f['cpu_clients_ms']:.1f},"
                f" PostgreSQL {f['cpu_postgresql_ms']:.1f}, Redis {f['cpu_redis_ms']:.1f}{weed}, other {f['cpu_other_ms']:.1f}"
                f" ({f['machine_busy']:.0%} busy)")

    def row(label: str, value: str, note: str = "") -> None:
        print(f"      {label:<36} {value:>24}   {note}".rstrip())

    print(f"  {kind} storage" + (" (temporary MEDIA_ROOT)" if kind == "local" else " (SeaweedFS weed server -s3, loopback)"))
    for label, title in (("declared", "rate limit as declared (10 jobs/s)"), ("lifted", "rate limit lifted (JOBS_QUEUES)")):
        a = fig[f"async_{label}"]
        print(f"    upload-async, 2 workers, {title}")
        row("request p50 / p95 / max", f"{a['p50_ms']:.1f} / {a['p95_ms']:.1f} / {a['max_ms']:.1f} ms", f"target p95 < {TARGET_P95_MS:g}  {mark(a['target_p95_ok'])}")
        row(f"all {n} answered (202)", f"{a['answered_s']:.2f} s")
        row(f"all {n} stored", f"{a['all_stored_s']:.2f} s", f"{a['mb_s']:.1f} MB/s")
        row("all stored / floor", f"{a['ratio_all_stored_vs_floor']:.1f} x", f"target <= {TARGET_FLOOR_RATIO:g}  {mark(a['target_floor_ok'])}")
        row("jobs: first start, last end", f"{a['jobs_first_start_s']:.2f} s, {a['jobs_last_end_s']:.2f} s", f"jobs per worker {a['jobs_per_worker']}")
        row("jobs: queue wait p50 / max", f"{a['queue_wait_p50_ms']:.0f} / {a['queue_wait_max_ms']:.0f} ms")
        row("jobs: run p50 / p95", f"{a['job_run_p50_ms']:.1f} / {a['job_run_p95_ms']:.1f} ms", f"workers busy {a['workers_busy']:.0%}")
        print(f"      {cpu(a)}")
    s = fig["sync"]
    print("    upload (synchronous), 2 idle workers")
    row("request p50 / p95 / max", f"{s['p50_ms']:.1f} / {s['p95_ms']:.1f} / {s['max_ms']:.1f} ms")
    row(f"all {n} stored (answered)", f"{s['all_stored_s']:.2f} s", f"{s['mb_s']:.1f} MB/s")
    print(f"      {cpu(s)}")
    print(f"    floor: {'bare file writes' if kind == 'local' else 'bare boto3 put_object'}, {clients} threads, this process")
    row(f"all {n} written", f"{fig['floor_s']:.2f} s", f"{fig['floor_mb_s']:.1f} MB/s")
    print("    ratios")
    for label in ("declared", "lifted"):
        a = fig[f"async_{label}"]
        row(f"async ({label}) / sync, p50", f"{a['ratio_p50_vs_sync']:.2f} x")
        row(f"async ({label}) / sync, all stored", f"{a['ratio_all_stored_vs_sync']:.2f} x")
    print("    where the time goes (before any worker runs)")
    v, one, b = fig["service"], fig["one_client"], fig["no_key"]
    print(f"      in this process, no HTTP, one call at a time, median of {SINGLE}:")
    row("  services.upload_async", f"{v['upload_async_ms']:.1f} ms")
    row("  services.upload", f"{v['upload_ms']:.1f} ms")
    row("  storage.digest (SHA-256, sniff)", f"{v['digest_ms']:.1f} ms")
    row("  storage.save", f"{v['storage_save_ms']:.1f} ms")
    row("  API key check", f"{v['api_key_ms']:.1f} ms")
    print(f"      over HTTP, one client, {one['files']} files, p50 / p95:")
    row("  upload-async", f"{one['upload_async']['p50_ms']:.1f} / {one['upload_async']['p95_ms']:.1f} ms")
    row("  upload", f"{one['upload']['p50_ms']:.1f} / {one['upload']['p95_ms']:.1f} ms")
    row("  no API key (401)", f"{one['no_key']['p50_ms']:.1f} / {one['no_key']['p95_ms']:.1f} ms")
    print(f"      no API key (401 once the body is read), {clients} clients:")
    row("  request p50 / p95", f"{b['p50_ms']:.1f} / {b['p95_ms']:.1f} ms", f"all {n} in {b['answered_s']:.2f} s")
    print(f"        {cpu(b)}")


# -- setup and cleanup ----------------------------------------------------------------------------


def clean(conn: Any) -> None:
    """Delete the file queues' jobs, events and counts, the bench user (its files and API key), its workers' rows and Redis keys."""
    clean_bench(conn, FILE_QUEUES, user=USER, worker_prefix=WORKER_PREFIX, redis_patterns=("rq:*file-*", "LIMITS*file-*"))


def clean_bench(conn: Any, queues: tuple[str, ...], *, user: str, worker_prefix: str, redis_patterns: tuple[str, ...], first: Any = None) -> None:
    """What a bench of the web server and workers leaves: the queues' jobs, events and counts, the bench user
    (and what cascades from it; `first()` deletes what protects it), its workers' rows, and the Redis keys of
    its jobs, workers, `redis_patterns` and the channel layer."""
    from django.contrib.auth import get_user_model
    from django.db import connection as db

    from jobs.engine import broker, priority
    from jobs.models import HookDelivery, Job, QueueCount, WorkerHeartbeat

    ids = list(Job.objects.filter(queue__in=queues).values_list("id", flat=True))
    with db.cursor() as cur:
        cur.execute("DELETE FROM jobs_jobevent WHERE queue = ANY(%s)", [list(queues)])
    HookDelivery.objects.filter(job_id__in=ids).delete()
    Job.objects.filter(queue__in=queues).delete()
    QueueCount.objects.filter(queue__in=queues).delete()
    if first is not None:
        first()
    get_user_model().objects.filter(username=user).delete()
    WorkerHeartbeat.objects.filter(name__startswith=worker_prefix).delete()
    keys: list[Any] = [f"rq:job:{i}" for i in ids]
    for pattern in (*redis_patterns, f"rq:*{worker_prefix}*", "asgi*"):
        keys += list(conn.scan_iter(match=pattern, count=1000))
    for i in range(0, len(keys), 1000):
        conn.delete(*keys[i : i + 1000])
    conn.srem("rq:queues", *[broker.rq_key(q, lv) for q in queues for lv in priority.LEVELS])
    names = [m for m in conn.smembers("rq:workers") if worker_prefix.encode() in m]
    if names:
        conn.srem("rq:workers", *names)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    p.add_argument("--files", type=int, default=200)
    p.add_argument("--size-mb", type=float, default=1.0)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--web-processes", type=int, default=1, help="uvicorn processes (WEB_PROCESSES of make run)")
    p.add_argument("--storage", default="local,s3", help="local, s3 or both (comma-separated)")
    args = p.parse_args()
    kinds = [k.strip() for k in args.storage.split(",") if k.strip()]
    if not kinds or set(kinds) - {"local", "s3"}:
        sys.exit("--storage takes local, s3 or local,s3")
    if args.files < SINGLE:
        sys.exit(f"--files must be at least {SINGLE}")

    setup_django(migrate=True)
    from django.contrib.auth import get_user_model

    from jobs.api.auth import create_api_key
    from jobs.engine import broker

    conn = broker.connection()
    clean(conn)
    user = get_user_model().objects.create_user(USER)
    api_key = create_api_key(user=user, name="bench")[1]
    size = int(args.size_mb * 1024 * 1024)
    payloads = [os.urandom(size) for _ in range(args.files)]
    bodies = encode(payloads)
    tmp = Path(tempfile.mkdtemp(prefix="bench-files-"))
    weed: Any = None
    result: dict[str, Any] = {"files": args.files, "size_mb": args.size_mb, "clients": args.clients, "web_processes": args.web_processes, "cpus": os.cpu_count()}
    print(f"jobconsole files bench: {args.files} files of {args.size_mb:g} MB, {args.clients} clients, "
          f"web server (uvicorn, {args.web_processes} process{'es' if args.web_processes > 1 else ''}) + 2 engine workers, {os.cpu_count()} CPUs")
    try:
        for kind in kinds:
            base_env = {"STORAGE": kind, "MEDIA_ROOT": str(tmp / kind / "media"), "S3_BUCKET": ""}
            floor: Callable[[], float]
            if kind == "local":
                stage = Stage(kind, base_env)
                floor = functools.partial(floor_local, tmp / kind / "media" / "floor", payloads, args.clients)
            else:
                from tests.files.weed import WeedS3

                weed = WeedS3(tmp / "weed")
                weed.start()
                bucket = f"bench-files-{uuid.uuid4().hex[:8]}"
                client = s3_client(weed.endpoint, args.clients)
                client.create_bucket(Bucket=bucket)
                stage = Stage(kind, {
                    **base_env, "S3_BUCKET": bucket, "S3_ENDPOINT_URL": weed.endpoint, "S3_REGION": "us-east-1",
                    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                })
                floor = functools.partial(floor_s3, client, bucket, payloads, args.clients)
            fig = measure_storage(stage, args, user, api_key, bodies, payloads, floor)
            result[kind] = fig
            report(kind, fig, args)
            if weed is not None:
                weed.stop()
                weed = None
            shutil.rmtree(tmp / kind, ignore_errors=True)
    finally:
        for proc in list(_procs):
            halt(proc)
        if weed is not None:
            weed.stop()
        clean(conn)
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
