"""AI bench: seed 4's text jobs through /v1, 2 engine workers and webhooks, against the bare processors.

    DATABASE_URL=postgres://127.0.0.1:5432/h_bench_ai REDIS_URL=redis://127.0.0.1:6379/13 \
        .venv/bin/python bench/ai.py [--sentiment 2000] [--summarize 500] [--clients 8] [--workers 2] [--quick]

Texts: --sentiment + --summarize English texts of about 2 KB (paragraphs of 3-6 sentences), composed
from sentence templates with a seeded random generator (--seed); no two are alike. --quick: 100 + 20.
  (a) bare: in this process, one job after another, what a job computes: tokens.count of the
      input (the web server's part), sentiment.analyze or summarize.summarize(max_sentences=3), and
      tokens.count of the output as the worker counts it; each processor is warmed by one call first;
  (b) system: the web server (uvicorn, one process, launcher.web.command) and --workers
      `manage.py worker ai-jobs webhooks` processes; a loopback receiver (ThreadingHTTPServer in a
      thread of this process, answering 200 and checking every signature) is registered with
      POST /v1/webhooks for the bench key before any job. After a warm-up (4 jobs of each kind,
      every process loads its models), two phases, one per kind: the sentiment set, then, once it
      has finished and all its webhooks are delivered, the summarize set. --clients threads (one
      keep-alive `requests` session each) POST /v1/jobs/<kind> {"text"} with the bench key.
      jobs/s: the phase's jobs / (just before the first POST -> the last row's completed_at);
      latency per job: the AiJob row's completed_at - created_at (POST -> SUCCEEDED; both written
      by timezone.now() on this machine), and completed_at - the moment the client sent the POST;
      the client's POST latency; per delivery created_at -> delivered_at, and deliveries/s:
      deliveries / (first created_at -> last delivered_at), and the rate of those still pending
      when the phase's last job succeeded (the drain); the receiver's count must be one POST per
      job (duplicates and bad signatures are reported);
      CPU ms per job of the web server, the workers, this process (clients and receiver),
      PostgreSQL (its backends that exited during the phase included, from the postmaster's
      children times), Redis and the rest of the machine (/proc), over each phase, and the new
      PostgreSQL connections per job (pg_stat_database.sessions) and the most the web server held
      open at once (it takes them from its pool, config/asgi.py).
Ratio: system jobs/s (all workers) / bare jobs/s (one process). Settings are production-like
(DEBUG=false); the per-key rate limit is lifted (AI_RATE_LIMIT_PER_MINUTE) and webhooks may go to
http://127.0.0.1 (WEBHOOKS_ALLOW_HTTP, WEBHOOKS_ALLOWED_NETWORKS). The bench owns its database
(created and migrated if missing) and Redis database. At the end, also after a failure, it stops
its processes and deletes its user (key, AI jobs, usage, endpoint, deliveries), the ai-jobs and
webhooks queues' jobs and events, its workers' rows and its Redis keys. It ends with one JSON line.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
for _path in (HERE, HERE.parent):  # bench/ for bench/files.py's `engine`, then the project first: `ai` and `files` are its apps
    sys.path.insert(0, str(_path))

from bench import files as files_bench  # noqa: E402
from bench.engine import _ts, free_port, output, percentile, port_open, setup_django, wait_until  # noqa: E402
from bench.files import CpuWatch, Posted, halt, spawn  # noqa: E402

QUEUES = ("ai-jobs", "webhooks")
KINDS = ("sentiment", "summarize")
USER = "bench-ai"
WORKER_PREFIX = "bench-ai-"
MAX_SENTENCES = 3
WARMUP = 4  # jobs of each kind before the phases: every process loads VADER, sumy and the tokenizer
TEXT_CHARS = 2000
AI_ENV = {
    "AI_RATE_LIMIT_PER_MINUTE": "1000000",  # the bench measures the pipeline, not the per-key limit
    "WEBHOOKS_ALLOW_HTTP": "true",
    "WEBHOOKS_ALLOWED_NETWORKS": "127.0.0.0/8",
}
CPU_PARTS = {"server": "web", "workers": "workers", "clients": "bench", "postgresql": "postgresql", "redis": "redis", "other": "other"}


# -- texts ----------------------------------------------------------------------------------------

NAMES = ("Maria", "Daniel", "Aisha", "Tom", "Priya", "Lukas", "Chen", "Sofia", "Omar", "Hannah", "Mateo", "Grace", "Ivan", "Leila")
CITIES = ("Lisbon", "Toronto", "Nairobi", "Osaka", "Denver", "Glasgow", "Porto", "Melbourne", "Austin", "Dublin", "Seoul", "Lyon")
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
THINGS = (
    "new dashboard", "mobile app", "replacement battery", "hotel room", "checkout page", "onboarding course", "delivery van",
    "customer portal", "coffee machine", "conference keynote", "billing system", "train connection", "laptop repair",
    "weekly newsletter", "search feature", "rental car", "support hotline", "kitchen renovation", "sync service", "city library",
)
GOOD = ("excellent", "reliable", "friendly", "fast", "helpful", "clear", "comfortable", "impressive", "pleasant", "well organised")
BAD = ("slow", "confusing", "broken", "noisy", "frustrating", "unreliable", "overpriced", "disappointing", "rude", "badly designed")
TEAMS = ("the support team", "the engineering group", "the front desk", "the finance office", "our suppliers", "the night shift", "the design studio")

POSITIVE = (
    "{name} said the {thing} was {good} and that {team} answered every question within {n} hours.",
    "I was genuinely happy with the {thing}; it felt {good} from the first day and I would recommend it to anyone.",
    "The staff in {city} were {good}, and the whole visit on {day} went better than we had hoped.",
    "Thanks to {team}, the {thing} now starts in under {n} seconds, which is a great improvement.",
    "Customers love how {good} the {thing} is, and the ratings rose to {n} out of 100 this quarter.",
    "It is a pleasure to work with {team}: they are patient, {good} and always keep their promises.",
    "The launch in {city} was a real success, with {n} new sign-ups before lunch on {day}.",
    "{name} praised the {thing} as the most {good} tool the office has bought in years.",
    "Everything about the {thing} was wonderful, from the {good} packaging to the clear instructions.",
    "We are delighted that {team} fixed the issue so quickly and kindly offered a {n} percent discount.",
)
NEGATIVE = (
    "Unfortunately the {thing} arrived {n} days late and the box was badly damaged.",
    "{name} complained that the {thing} was {bad} and that nobody from {team} ever called back.",
    "The {thing} keeps crashing after about {n} minutes, which is really annoying during meetings.",
    "I am disappointed: the staff in {city} were {bad} and the wait on {day} lasted almost {n} minutes.",
    "The new version of the {thing} is {bad}, and several users say they hate the changes.",
    "Sadly, {team} lost the paperwork twice, so the refund is still missing after {n} weeks.",
    "The {thing} feels {bad} and expensive, and the manual does not explain the basic settings.",
    "Our trip to {city} was ruined by a {bad} {thing} and a hotel that ignored every complaint.",
    "{name} warned that the {thing} fails without any error message, which makes problems hard to find.",
    "The worst part was the {bad} {thing}; we wasted {n} hours and got no apology.",
)
NEUTRAL = (
    "The meeting about the {thing} is planned for {day} at {hour} o'clock in the {city} office.",
    "{name} will send the updated figures for the {thing} to {team} by the end of the week.",
    "The report covers {n} locations, including the branch in {city}, and will be published on {day}.",
    "According to the schedule, the {thing} will be reviewed by {team} once the budget is approved.",
    "The {thing} was installed in {city} last spring and has been used by about {n} people since then.",
    "A second survey with {n} questions is expected in March, after the first results are checked.",
    "{name} moved to {city} in {year} and now coordinates the {thing} project with {team}.",
    "The price of the {thing} depends on the region, the contract length and the number of seats.",
    "Each team keeps its own notes on the {thing}, and the summary is shared every {day}.",
    "The agenda lists {n} items, starting with the {thing} and ending with questions from {team}.",
)


def sentence(rng: random.Random) -> str:
    """One sentence of a random tone, its slots filled."""
    template = rng.choice(rng.choice((POSITIVE, NEGATIVE, NEUTRAL)))
    text = template.format(
        name=rng.choice(NAMES), city=rng.choice(CITIES), day=rng.choice(DAYS), thing=rng.choice(THINGS), good=rng.choice(GOOD),
        bad=rng.choice(BAD), team=rng.choice(TEAMS), n=rng.randint(2, 95), hour=rng.randint(8, 17), year=rng.randint(1998, 2023),
    )
    return text[0].upper() + text[1:]


def compose(rng: random.Random, chars: int = TEXT_CHARS) -> str:
    """About `chars` characters of sentences in paragraphs of 3-6 sentences, separated by blank lines."""
    paragraphs: list[list[str]] = [[]]
    size = 0
    while size < chars:
        if len(paragraphs[-1]) >= rng.randint(3, 6):
            paragraphs.append([])
        s = sentence(rng)
        paragraphs[-1].append(s)
        size += len(s) + 1
    return "\n\n".join(" ".join(p) for p in paragraphs)


def texts(n: int, seed: int) -> list[str]:
    """`n` different texts, the same for the same seed."""
    rng = random.Random(seed)
    found: dict[str, None] = {}
    while len(found) < n:
        found[compose(rng)] = None
    return list(found)


# -- bare -----------------------------------------------------------------------------------------


def processor(kind: str) -> Callable[[str], dict[str, Any]]:
    from ai.processors import sentiment, summarize

    if kind == "sentiment":
        return sentiment.analyze
    return lambda text: summarize.summarize(text, max_sentences=MAX_SENTENCES)


def bare(kind: str, batch: list[str]) -> dict[str, float]:
    """What the jobs compute, one after another in this process: input tokens, the processor, output tokens."""
    from ai import services
    from ai.processors import tokens

    run, job_type = processor(kind), services.KINDS[kind]

    def one(text: str) -> None:
        tokens.count(text)
        tokens.count(services.output_text(job_type, run(text)))

    one(batch[0] + "\n\nWarm-up.")  # loads the lexicon, the stemmer and the tokenizer; not one of the texts
    wall, cpu = time.perf_counter(), time.process_time()
    for text in batch:
        one(text)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"s": round(wall, 3), "jobs_s": round(len(batch) / wall, 2), "ms_per_job": round(wall * 1000 / len(batch), 2), "cpu_ms_per_job": round(cpu * 1000 / len(batch), 2)}


# -- the webhook receiver -------------------------------------------------------------------------


@dataclass
class Received:
    """What the loopback receiver got: per POST (webhook-id, AI job id, whether its signature verified)."""

    secret: str = ""
    posts: list[tuple[str, str, bool]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, body: bytes, headers: dict[str, str]) -> None:
        from standardwebhooks import Webhook

        try:
            Webhook(self.secret).verify(body, headers)
            ok = True
        except Exception:  # noqa: BLE001 - any failure to verify counts as a bad signature
            ok = False
        job_id = str(json.loads(body).get("data", {}).get("id", ""))
        with self.lock:
            self.posts.append((headers.get("webhook-id", ""), job_id, ok))

    def of(self, ids: set[str]) -> list[tuple[str, str, bool]]:
        with self.lock:
            return [p for p in self.posts if p[1] in ids]


def receiver(received: Received) -> ThreadingHTTPServer:
    """A ThreadingHTTPServer on a free loopback port, serving in a daemon thread: every POST is recorded and answered 200."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received.take(body, {k.lower(): v for k, v in self.headers.items()})
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="bench-ai-receiver", daemon=True).start()
    return server


# -- processes ------------------------------------------------------------------------------------


def start_server(port: int) -> subprocess.Popen[bytes]:
    from launcher import web

    server = spawn(web.command("127.0.0.1", port, access_log=False), AI_ENV)
    wait_until(lambda: port_open(port) or server.poll() is not None, 30, "the web server")
    if server.poll() is not None:
        raise RuntimeError(f"the web server exited:\n{output(server)}")
    return server


def start_workers(n: int) -> list[subprocess.Popen[bytes]]:
    """`n` engine worker processes on ai-jobs and webhooks; returns once all have registered."""
    from jobs.models import WorkerHeartbeat

    names = [f"{WORKER_PREFIX}{i}" for i in range(n)]
    procs = [spawn([sys.executable, "manage.py", "worker", *QUEUES, "--name", name], AI_ENV) for name in names]

    def up() -> bool:
        alive(procs)
        return WorkerHeartbeat.objects.filter(name__in=names, stopped_at__isnull=True).count() == n

    wait_until(up, 60, "the workers", every=0.2)
    return procs


def alive(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is not None:
            raise RuntimeError(f"{p.args!r} exited with {p.returncode}:\n{output(p)}")


# -- the system -----------------------------------------------------------------------------------


@dataclass
class Sent(Posted):
    """A batch of job POSTs (bench.files.Posted), with when each was sent (time.time(), the clock the rows are written with)."""

    sent_at: list[float] = field(default_factory=list)


def post_jobs(url: str, bodies: list[bytes], clients: int, api_key: str) -> Sent:
    """POST every JSON body from `clients` threads (one keep-alive session each); each must be answered 201."""
    import requests

    local = threading.local()
    sessions: list[Any] = []
    lock = threading.Lock()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {api_key}"}

    def one(body: bytes) -> tuple[float, float, dict[str, Any]]:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
            with lock:
                sessions.append(session)
        sent, t = time.time(), time.perf_counter()
        r = session.post(url, data=body, headers=headers, timeout=300)
        ms = (time.perf_counter() - t) * 1000
        if r.status_code != 201:
            raise RuntimeError(f"POST {url} answered {r.status_code}: {r.text[:500]}")
        return sent, ms, r.json()

    t0 = time.perf_counter()
    try:
        with ThreadPoolExecutor(clients) as pool:
            results = list(pool.map(one, bodies))
    finally:
        for session in sessions:
            session.close()
    return Sent(
        latencies_ms=[r[1] for r in results], bodies=[r[2] for r in results], t0_wall=min(r[0] for r in results),
        elapsed_s=time.perf_counter() - t0, sent_at=[r[0] for r in results],
    )


@dataclass
class System:
    """The running web server, workers and receiver, and the bench key."""

    base: str
    api_key: str
    owner_id: int
    server: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]]
    received: Received

    def post(self, kind: str, batch: list[str], clients: int) -> Sent:
        extra = {"maxSentences": MAX_SENTENCES} if kind == "summarize" else {}
        bodies = [json.dumps({"text": t, **extra}).encode() for t in batch]
        return post_jobs(f"{self.base}/v1/jobs/{kind}", bodies, clients, self.api_key)


def register_receiver(base: str, api_key: str, url: str) -> str:
    """POST /v1/webhooks with the bench key; the endpoint's secret."""
    import requests

    r = requests.post(f"{base}/v1/webhooks", json={"url": url}, headers={"Authorization": f"Bearer {api_key}"}, timeout=30)
    if r.status_code != 201:
        raise RuntimeError(f"POST /v1/webhooks answered {r.status_code}: {r.text[:500]}")
    return str(r.json()["secret"])


def wait_done(system: System, since: datetime, n: int, timeout: float) -> None:
    """Until the `n` jobs created since `since` have SUCCEEDED and their `n` webhooks are delivered; a job ended
    otherwise, a dead process or the timeout is an error. Polled by owner and time (indexed), not by id."""
    from django.db.models import Count

    from ai.models import AiJob
    from webhooks.models import Delivery

    jobs_q = AiJob.objects.filter(owner_id=system.owner_id, created_at__gte=since)
    deadline = time.monotonic() + timeout
    while True:
        alive([system.server, *system.workers])
        jobs = dict(jobs_q.values_list("status").annotate(c=Count("id")))
        if set(jobs) - {"QUEUED", "PROCESSING", "SUCCEEDED"}:
            errors = list(jobs_q.exclude(status__in=["QUEUED", "PROCESSING", "SUCCEEDED"]).values_list("error", flat=True)[:3])
            raise RuntimeError(f"jobs ended otherwise: {jobs} {errors}")
        delivered = 0
        if jobs.get("SUCCEEDED") == n:
            delivered = Delivery.objects.filter(owner_id=system.owner_id, created_at__gte=since, status="delivered").count()
            if delivered >= n:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"not done within {timeout:.0f} s: jobs {jobs}, {delivered} deliveries delivered")
        time.sleep(0.5)


def job_figures(posted: Sent) -> dict[str, Any]:
    """jobs/s (first POST -> last completed_at); POST -> SUCCEEDED from the row (created_at) and from the client (sent);
    queue wait and run time of the rows; jobs per worker."""
    from ai.models import AiJob
    from jobs.models import Job

    sent = {str(b["id"]): at for b, at in zip(posted.bodies, posted.sent_at)}
    rows = list(AiJob.objects.filter(pk__in=list(sent)).values_list("id", "created_at", "started_at", "completed_at", "job_id"))
    created = {r[0]: _ts(r[1]) for r in rows}
    started = {r[0]: _ts(r[2]) for r in rows}
    completed = {r[0]: _ts(r[3]) for r in rows}
    latency = [(completed[i] - created[i]) * 1000 for i in sent]
    from_client = [(completed[i] - sent[i]) * 1000 for i in sent]
    wait = [(started[i] - created[i]) * 1000 for i in sent]
    run = [(completed[i] - started[i]) * 1000 for i in sent]
    last = max(completed.values())
    counts: dict[str, int] = {}
    for name in Job.objects.filter(pk__in=[r[4] for r in rows]).values_list("worker_name", flat=True):
        counts[name or "?"] = counts.get(name or "?", 0) + 1

    def ms(values: list[float], q: float) -> float:
        return round(percentile(values, q), 1)

    return {
        "jobs": len(rows), "s": round(last - posted.t0_wall, 3), "jobs_s": round(len(rows) / (last - posted.t0_wall), 2), "last_completed": last,
        "latency_p50_ms": ms(latency, 0.5), "latency_p95_ms": ms(latency, 0.95), "latency_max_ms": round(max(latency), 1),
        "client_latency_p50_ms": ms(from_client, 0.5), "client_latency_p95_ms": ms(from_client, 0.95), "client_latency_max_ms": round(max(from_client), 1),
        "queue_wait_p50_ms": ms(wait, 0.5), "run_p50_ms": ms(run, 0.5), "run_p95_ms": ms(run, 0.95),
        "post_p50_ms": posted.p(0.5), "post_p95_ms": posted.p(0.95), "posted_s": round(posted.elapsed_s, 3),
        "jobs_per_worker": sorted(counts.values()),
    }


def delivery_figures(system: System, ids: list[str], last_job: float) -> dict[str, Any]:
    """Deliveries/s (first created_at -> last delivered_at), created -> delivered latency, attempts, and what the receiver got.

    Also the drain: the deliveries still pending when the last job had succeeded (`last_job`), and their rate from then on.
    """
    from django.db.models import Count

    from jobs.models import Job
    from webhooks.models import Delivery

    rows = list(Delivery.objects.filter(payload__data__id__in=ids).annotate(n=Count("attempts")).values_list("id", "created_at", "delivered_at", "n"))
    first, last = min(_ts(r[1]) for r in rows), max(_ts(r[2]) for r in rows)
    lag = [(_ts(r[2]) - _ts(r[1])) * 1000 for r in rows]
    got = system.received.of(set(ids))
    jobs = Job.objects.filter(queue="webhooks", group_ref__in=[r[0] for r in rows]).values_list("started_at", "completed_at")
    run = [(_ts(done) - _ts(start)) * 1000 for start, done in jobs]
    drained = [_ts(r[2]) for r in rows if _ts(r[2]) > last_job]
    return {
        "drain_deliveries": len(drained), "drain_s": round(max(drained) - last_job, 3) if drained else 0.0,
        "drain_deliveries_s": round(len(drained) / (max(drained) - last_job), 2) if len(drained) >= 10 else None,
        "deliveries": len(rows), "deliveries_s": round(len(rows) / (last - first), 2), "delivery_s": round(last - first, 3),
        "delivery_lag_p50_ms": round(percentile(lag, 0.5), 1), "delivery_lag_p95_ms": round(percentile(lag, 0.95), 1),
        "delivery_run_p50_ms": round(percentile(run, 0.5), 2), "delivery_run_p95_ms": round(percentile(run, 0.95), 2),
        "attempts": sum(r[3] for r in rows), "received": len(got),
        "duplicates": len(got) - len({p[1] for p in got}),  # POSTs beyond one per job
        "duplicate_webhook_ids": len(got) - len({p[0] for p in got}),  # the same delivery POSTed again
        "missing": len(set(ids) - {p[1] for p in got}), "bad_signatures": sum(1 for p in got if not p[2]),
    }


def postgres_exited_cpu() -> float:
    """CPU seconds so far of PostgreSQL backends that have exited (the postmaster's cutime + cstime, Linux /proc).

    bench.files.CpuWatch counts live processes only: the backend of a connection that closed during a
    phase would fall into `other`.
    """
    hz = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, tail = stat.read_text().rsplit(")", 1)
        except OSError:
            continue  # exited meanwhile
        if head.split("(", 1)[-1] == "postgres":
            fields = tail.split()
            total += (int(fields[13]) + int(fields[14])) / hz
    return total


def pg_sessions() -> int:
    """Connections ever made to the bench's database (pg_stat_database.sessions, PostgreSQL 14+)."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        found = cur.fetchone()
    return int(found[0]) if found else 0


def cpu_figures(watch: CpuWatch, exited: float, sessions: int, n: int) -> dict[str, Any]:
    """CPU ms per job of each part, PostgreSQL's exited backends moved from `other` to `postgresql`; new connections per job."""
    cpu = watch.per_file(n)
    exited_ms = (postgres_exited_cpu() - exited) * 1000 / n
    cpu["cpu_postgresql_ms"] += exited_ms
    cpu["cpu_other_ms"] = max(cpu["cpu_other_ms"] - exited_ms, 0.0)
    fig: dict[str, Any] = {f"cpu_{name}_ms": round(cpu[f"cpu_{part}_ms"], 1) for part, name in CPU_PARTS.items()}
    fig["cpu_total_ms"] = round(sum(fig.values()), 1)
    fig["cpu_postgresql_exited_ms"] = round(exited_ms, 1)
    fig["machine_busy"] = cpu["machine_busy"]
    fig["pg_sessions_per_job"] = round((pg_sessions() - sessions) / n, 2)
    return fig


def pg_connections(pid: int, port: int) -> int:
    """Established TCP connections of process `pid` to `port` (Linux /proc; 0 where unavailable)."""
    remote = f":{port:04X}"
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        inodes |= {f"socket:[{f[9]}]" for f in map(str.split, lines) if f[2].endswith(remote) and f[3] == "01"}
    n = 0
    for fd in Path(f"/proc/{pid}/fd").glob("*"):
        try:
            n += os.readlink(fd) in inodes
        except OSError:
            continue  # closed meanwhile
    return n


class Peak(threading.Thread):
    """The highest value of `probe()`, sampled every `every` seconds until stop()."""

    def __init__(self, probe: Callable[[], int], every: float = 0.5) -> None:
        super().__init__(name="bench-ai-peak", daemon=True)
        self.probe, self.every, self.peak = probe, every, 0
        self.done = threading.Event()
        self.start()

    def run(self) -> None:
        while not self.done.wait(self.every):
            self.peak = max(self.peak, self.probe())

    def stop(self) -> int:
        self.done.set()
        self.join()
        return self.peak


def pg_port() -> int:
    from django.db import connection

    return int(connection.settings_dict.get("PORT") or 5432)


def phase(system: System, kind: str, batch: list[str], clients: int) -> dict[str, Any]:
    """Post the batch, wait until every job has succeeded and its webhook is delivered; the figures, CPU per job included."""
    from django.utils import timezone

    since, sessions, exited = timezone.now(), pg_sessions(), postgres_exited_cpu()
    watch = CpuWatch(system.server, system.workers)
    port, pid = pg_port(), system.server.pid
    peak = Peak(lambda: pg_connections(pid, port))
    try:
        posted = system.post(kind, batch, clients)
        ids = [str(b["id"]) for b in posted.bodies]
        wait_done(system, since, len(ids), timeout=max(120.0, len(batch) * 0.5))
    finally:
        web_connections = peak.stop()
    cpu = cpu_figures(watch, exited, sessions, len(ids))
    jobs = job_figures(posted)
    last_job = jobs.pop("last_completed")
    return {**jobs, **delivery_figures(system, ids, last_job), **cpu, "web_pg_connections_peak": web_connections}


def warm_up(system: System, batch: list[str]) -> None:
    """WARMUP jobs of each kind, not measured: every worker and the web server load what the jobs need."""
    from django.utils import timezone

    since = timezone.now()
    for i, kind in enumerate(KINDS):
        system.post(kind, batch[i * WARMUP : (i + 1) * WARMUP], 2)
    wait_done(system, since, WARMUP * len(KINDS), timeout=120)


def start_system(args: argparse.Namespace, received: Received, hook_port: int) -> System:
    """The bench user and key, the web server, the receiver registered as the key's endpoint, and the workers."""
    from django.contrib.auth import get_user_model

    from jobs.api.auth import create_api_key

    user = get_user_model().objects.create_user(USER)
    api_key = create_api_key(user=user, name="bench")[1]
    port = free_port()
    server = start_server(port)
    base = f"http://127.0.0.1:{port}"
    try:
        received.secret = register_receiver(base, api_key, f"http://127.0.0.1:{hook_port}/hook")
    except RuntimeError as exc:
        raise RuntimeError(f"{exc}\nthe web server's output:\n{output(server)}") from None
    return System(base=base, api_key=api_key, owner_id=user.pk, server=server, workers=start_workers(args.workers), received=received)


# -- report ---------------------------------------------------------------------------------------


def row(label: str, value: str, note: str = "") -> None:
    print(f"    {label:<40} {value:>22}   {note}".rstrip(), flush=True)


def report_bare(fig: dict[str, dict[str, float]], batches: dict[str, list[str]]) -> None:
    print("  bare, this process, one job after another (input tokens, processor, output tokens)")
    for kind in KINDS:
        b = fig[kind]
        row(f"{kind}, {len(batches[kind])} texts", f"{b['jobs_s']:.1f} jobs/s", f"{b['ms_per_job']:.2f} ms/job, {b['cpu_ms_per_job']:.2f} ms CPU")


def report_phase(kind: str, f: dict[str, Any], args: argparse.Namespace) -> None:
    print(f"  {kind}: {f['jobs']} jobs through /v1, {args.clients} clients, {args.workers} workers")
    row("first POST -> last SUCCEEDED", f"{f['jobs_s']:.1f} jobs/s", f"{f['s']:.2f} s; system / bare {f['ratio_vs_bare']:.2f} x")
    row("POST -> SUCCEEDED p50 / p95 / max", f"{f['latency_p50_ms']:.0f} / {f['latency_p95_ms']:.0f} / {f['latency_max_ms']:.0f} ms", "row created_at -> completed_at")
    row("  the same from the client's send", f"{f['client_latency_p50_ms']:.0f} / {f['client_latency_p95_ms']:.0f} / {f['client_latency_max_ms']:.0f} ms", "POST sent -> completed_at")
    row("client POST p50 / p95", f"{f['post_p50_ms']:.1f} / {f['post_p95_ms']:.1f} ms", f"all posted in {f['posted_s']:.2f} s")
    row("job: queue wait p50, run p50 / p95", f"{f['queue_wait_p50_ms']:.0f}, {f['run_p50_ms']:.1f} / {f['run_p95_ms']:.1f} ms", f"jobs per worker {f['jobs_per_worker']}")
    row("webhooks: first created -> last delivered", f"{f['deliveries_s']:.1f} deliveries/s", f"{f['deliveries']} in {f['delivery_s']:.2f} s, {f['attempts']} attempts")
    row("webhooks: created -> delivered p50 / p95", f"{f['delivery_lag_p50_ms']:.0f} / {f['delivery_lag_p95_ms']:.0f} ms")
    row("webhooks: delivery job run p50 / p95", f"{f['delivery_run_p50_ms']:.1f} / {f['delivery_run_p95_ms']:.1f} ms", "engine row started_at -> completed_at")
    drain = f"{f['drain_deliveries_s']:.1f} deliveries/s" if f["drain_deliveries_s"] is not None else "-"
    row("webhooks: after the last job succeeded", drain, f"{f['drain_deliveries']} delivered in {f['drain_s']:.2f} s")
    row("receiver: POSTs, duplicates, missing", f"{f['received']}, {f['duplicates']}, {f['missing']}", f"bad signatures {f['bad_signatures']}")
    parts = ", ".join(f"{name} {f[f'cpu_{name}_ms']:.1f}" for name in CPU_PARTS.values())
    print(f"    CPU ms/job: {parts}; total {f['cpu_total_ms']:.1f} ({f['machine_busy']:.0%} busy)")
    print(f"      PostgreSQL backends that exited: {f['cpu_postgresql_exited_ms']:.1f} ms/job of it; new PostgreSQL connections per job {f['pg_sessions_per_job']:.2f}")
    print(f"      the web server's open PostgreSQL connections, peak: {f['web_pg_connections_peak']}", flush=True)


def report_total(result: dict[str, Any]) -> None:
    print("  all jobs")
    row("bare, 1 process", f"{result['bare_jobs_s']:.1f} jobs/s")
    row(f"system, {result['workers']} workers", f"{result['system_jobs_s']:.1f} jobs/s", f"system / bare {result['ratio_vs_bare']:.2f} x")


# -- cleanup --------------------------------------------------------------------------------------


def clean(conn: Any) -> None:
    """Delete the bench user (key, AI jobs, usage, endpoint, deliveries), the queues' jobs, events and counts, its workers and Redis keys."""
    from ai.models import UsageDay

    files_bench.clean_bench(
        conn, QUEUES, user=USER, worker_prefix=WORKER_PREFIX, redis_patterns=(*(f"rq:*{q}*" for q in QUEUES), "LIMITS*/ai/*"),
        first=lambda: UsageDay.objects.filter(owner__username=USER).delete(),  # it protects the key
    )


# -- main -----------------------------------------------------------------------------------------


def show_logs() -> None:
    """What the web server and the workers said, for a failure's cause."""
    for proc in files_bench._procs:
        said = output(proc)
        name = " ".join(map(str, proc.args[1:5])) if isinstance(proc.args, list) else str(proc.args)
        print(f"--- {name}:\n{said}", file=sys.stderr)


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    p.add_argument("--sentiment", type=int, default=2000, help="sentiment jobs")
    p.add_argument("--summarize", type=int, default=500, help="summarize jobs")
    p.add_argument("--clients", type=int, default=8, help="client threads posting the jobs")
    p.add_argument("--workers", type=int, default=2, help="engine worker processes")
    p.add_argument("--seed", type=int, default=4, help="of the texts")
    p.add_argument("--quick", action="store_true", help="a short try: --sentiment 100 --summarize 20")
    args = p.parse_args()
    if args.quick:
        args.sentiment, args.summarize = 100, 20
    if min(args.sentiment, args.summarize, args.clients, args.workers) < 1:
        p.error("--sentiment, --summarize, --clients and --workers must be at least 1")
    return args


def totals(result: dict[str, Any]) -> None:
    """jobs/s and their ratio over all jobs (system time: the two phases' first POST -> last SUCCEEDED)."""
    n = sum(result[kind]["jobs"] for kind in KINDS)
    result["bare_jobs_s"] = round(n / sum(result["bare"][kind]["s"] for kind in KINDS), 2)
    result["system_jobs_s"] = round(n / sum(result[kind]["s"] for kind in KINDS), 2)
    result["ratio_vs_bare"] = round(result["system_jobs_s"] / result["bare_jobs_s"], 3)


def main() -> None:
    args = parse()
    os.environ.update(AI_ENV)  # this process's settings as the server's and the workers'
    setup_django(migrate=True)
    from jobs.engine import broker

    conn = broker.connection()
    clean(conn)
    corpus = texts(args.sentiment + args.summarize + WARMUP * len(KINDS), args.seed)
    batches = {"sentiment": corpus[: args.sentiment], "summarize": corpus[args.sentiment : args.sentiment + args.summarize]}
    result: dict[str, Any] = {"sentiment_jobs": args.sentiment, "summarize_jobs": args.summarize, "clients": args.clients, "workers": args.workers, "cpus": os.cpu_count()}
    result["text_chars_avg"] = round(sum(map(len, corpus)) / len(corpus))
    print(f"jobconsole AI bench: {args.sentiment} sentiment + {args.summarize} summarize jobs, texts of {result['text_chars_avg']} characters on average, "
          f"{args.clients} clients, web server (uvicorn, 1 process) + {args.workers} engine workers, {os.cpu_count()} CPUs", flush=True)
    result["bare"] = {kind: bare(kind, batches[kind]) for kind in KINDS}
    report_bare(result["bare"], batches)
    received = Received()
    hooks = receiver(received)
    try:
        system = start_system(args, received, hooks.server_address[1])
        warm_up(system, corpus[args.sentiment + args.summarize :])
        for kind in KINDS:
            result[kind] = phase(system, kind, batches[kind], args.clients)
            result[kind]["ratio_vs_bare"] = round(result[kind]["jobs_s"] / result["bare"][kind]["jobs_s"], 3)
            report_phase(kind, result[kind], args)
    except BaseException:
        show_logs()
        raise
    finally:
        for proc in list(files_bench._procs):
            halt(proc)
        hooks.shutdown()
        clean(conn)
    totals(result)
    report_total(result)
    print()
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
