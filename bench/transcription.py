"""Transcription benchmark: the bare faster-whisper call against the full path, on the same audio.

    DATABASE_URL=postgres://127.0.0.1:5432/h_bench_tx REDIS_URL=redis://127.0.0.1:6379/10 \
        .venv/bin/python bench/transcription.py [--runs 3] [--clips 20] [--poll-ms 20]

One run measures, with the bundled TINY model (tiny.en, int8 on CPU):
  (a) a ~60 s clip spoken by espeak-ng (distinct sentences), WAV;
  (b) the bare call: transcription.engine.transcribe(path) in this process on the warm model (loaded
      once, one warm-up call), median of --runs timed calls; seconds and real-time factor;
  (c) the full path with a warm worker: a real HTTP server (daphne on a free loopback port) and a
      long-running `manage.py worker transcription`, warmed by one transcription; then --runs times:
      POST the clip (multipart, API key), poll GET /api/transcriptions/{id} every --poll-ms until it
      is completed, GET /result. Figures: POST to the job row's completed_at (the main one), POST to
      the poll that saw it, and the row's started_at -> completed_at; median, RTF, ratio to (b);
  (d) throughput: --clips short clips (~10 s, distinct text) queued at once (queue paused while they
      are enqueued) and run by 2 worker processes, first started_at -> last completed_at, against the
      same clips one after another through the bare call in this process.
Every transcript is checked: most of the spoken words must come back in order. It prints a table
and ends with one JSON line.

Storage is local, in a temporary MEDIA_ROOT shared by this process and its children. The bench owns
its database (created and migrated if missing): it deletes its transcriptions, the transcription
queue's jobs, its user, its workers' rows and its Redis keys at the end, also on failure.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import shutil
import socket
import statistics
import sys
import tempfile
import time
import uuid
import wave
from pathlib import Path
from typing import TYPE_CHECKING, Any

# The tests' audio helpers (espeak-ng speech, in-order word matching). The project root goes last
# on sys.path: this script's own folder stays first, so bench/engine.py is found as `engine`.
sys.path.append(str(Path(__file__).resolve().parent.parent))
from engine import cpu_seconds, free_port  # noqa: E402
from tests.transcription import audio  # noqa: E402

if TYPE_CHECKING:
    from jobs.access import User

QUEUE = "transcription"
WORKER_PREFIX = "bench-tx-"
USERNAME = "bench-transcription"
TARGET_RATIO = 1.05
MIN_WORDS_BACK = 0.7

# The tests' sentences (tiny.en hears them well from espeak-ng) and a few more, for distinct clips.
SENTENCES = audio.SENTENCES + (
    "Good morning everyone, and welcome to the weekly planning meeting.",
    "Please send the weekly report to the whole team before the meeting on Friday afternoon.",
    "After that we will talk about the budget for the coming quarter.",
    "Please keep your questions until the end of each section.",
    "The new office is next to the railway station, close to the river.",
    "Thank you all for coming today, and let us begin with the first topic.",
)


# -- audio ----------------------------------------------------------------------------------------


def speak(text: str, out: Path, words_per_minute: int = 150) -> Path:
    return audio.speak(text, out, words_per_minute=words_per_minute)


def duration(path: Path) -> float:
    with wave.open(str(path)) as f:
        return f.getnframes() / f.getframerate()


def long_clip(out: Path, target: float = 60.0) -> tuple[Path, str, float]:
    """Every sentence once, at the speed that makes it about `target` seconds."""
    text = " ".join(SENTENCES)
    wpm = 150
    for _ in range(3):
        seconds = duration(speak(text, out, wpm))
        if abs(seconds - target) <= 2.5:
            break
        wpm = round(wpm * seconds / target)
    return out, text, seconds


def short_clips(folder: Path, n: int) -> list[tuple[Path, str]]:
    """n clips of two different sentences each (about 10 s), no two with the same text."""
    clips, seen = [], set()
    for i in range(n):
        a, b = i % len(SENTENCES), (i + 5 + 3 * (i // len(SENTENCES))) % len(SENTENCES)
        if a == b or (a, b) in seen:
            b = (b + 1) % len(SENTENCES)
        seen.add((a, b))
        text = f"{SENTENCES[a]} {SENTENCES[b]}"
        clips.append((speak(text, folder / f"short-{i:02d}.wav"), text))
    return clips


words, words_back = audio.words, audio.in_order_fraction


def check_words(spoken: str, heard: str, what: str) -> float:
    share = words_back(spoken, heard)
    if share < MIN_WORDS_BACK:
        raise RuntimeError(f"{what}: only {share:.0%} of the spoken words came back: {heard[:300]!r}")
    return share


# -- processes and HTTP ---------------------------------------------------------------------------


class Api:
    """A keep-alive HTTP/1.1 client for the API with a bearer key."""

    def __init__(self, port: int, key: str) -> None:
        self.port, self.key = port, key
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        hdrs = {"Authorization": f"Bearer {self.key}", **(headers or {})}
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=body, headers=hdrs)
                resp = self.conn.getresponse()
                return resp.status, resp.read()
            except (ConnectionError, http.client.HTTPException):
                self.conn.close()  # the server closed the kept-alive connection: reconnect once
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def json(self, method: str, path: str, expect: int = 200, **kw: Any) -> Any:
        status, data = self.request(method, path, **kw)
        if status != expect:
            raise RuntimeError(f"{method} {path}: {status} {data[:500]!r}")
        return json.loads(data)

    def close(self) -> None:
        self.conn.close()


def multipart(path: Path, fields: dict[str, str]) -> tuple[bytes, str]:
    boundary = "bench" + uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\nContent-Type: audio/wav\r\n\r\n'.encode())
    body = b"".join(parts) + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


# -- measurements ---------------------------------------------------------------------------------


def bare_once(path: Path) -> tuple[float, float, str]:
    """Wall and CPU seconds of one engine call in this process (the model already loaded), and its text."""
    from transcription import engine

    c, t = time.process_time(), time.perf_counter()
    text = engine.transcribe(path).text
    return time.perf_counter() - t, time.process_time() - c, text


def full_once(api: Api, path: Path, poll: float, worker_pid: int, server_pid: int) -> dict[str, float | str]:
    """POST the clip, poll until completed, fetch the result; times from the client and the job row."""
    from jobs.models import Job

    body, ctype = multipart(path, {"format": "TXT"})
    cpu_w, cpu_s = cpu_seconds(worker_pid), cpu_seconds(server_pid)
    t0 = time.time()
    created = api.json("POST", "/api/transcriptions", expect=201, body=body, headers={"Content-Type": ctype})
    posted = time.time()
    tid, polls = created["transcriptionId"], 0
    while True:
        shown = api.json("GET", f"/api/transcriptions/{tid}")
        polls += 1
        if shown["status"] in ("completed", "failed", "cancelled"):
            seen = time.time()
            break
        time.sleep(poll)
    if shown["status"] != "completed":
        raise RuntimeError(f"transcription {tid} ended {shown['status']}: {shown.get('failedReason')}")
    status, text = api.request("GET", f"/api/transcriptions/{tid}/result")
    if status != 200:
        raise RuntimeError(f"result of {tid}: {status} {text[:300]!r}")
    job = Job.objects.get(pk=created["jobId"])
    assert job.created_at and job.started_at and job.completed_at
    return {
        "text": text.decode(),
        "row_s": job.completed_at.timestamp() - t0,
        "poll_s": seen - t0,
        "post_s": posted - t0,
        "queue_s": job.started_at.timestamp() - job.created_at.timestamp(),
        "worker_s": (job.completed_at - job.started_at).total_seconds(),
        "polls": polls,
        "worker_cpu_s": cpu_seconds(worker_pid) - cpu_w,
        "server_cpu_s": cpu_seconds(server_pid) - cpu_s,
    }


def enqueue(user: User, path: Path) -> str:
    from transcription import services

    with path.open("rb") as fh:
        row, job = services.request_transcription(owner=user, upload=fh, upload_name=path.name, format="TXT")
    return str(job.id)


def wait_jobs(ids: list[str], timeout: float, every: float = 0.05) -> None:
    from jobs.models import Job

    deadline = time.monotonic() + timeout
    while Job.objects.filter(pk__in=ids, status__in=("completed", "failed", "cancelled")).count() < len(ids):
        if time.monotonic() > deadline:
            raise RuntimeError(f"jobs not done within {timeout:.0f}s: {list(Job.objects.filter(pk__in=ids).values_list('status', flat=True))}")
        time.sleep(every)
    bad = list(Job.objects.filter(pk__in=ids).exclude(status="completed").values_list("id", "status", "failed_reason"))
    if bad:
        raise RuntimeError(f"jobs did not complete: {bad}")


def warm_workers(user: User, names: list[str], clip: Path, timeout: float = 120) -> None:
    """Transcribe until every named worker has run one job (so each has loaded the model)."""
    from jobs.models import Job

    deadline = time.monotonic() + timeout
    while set(Job.objects.filter(queue=QUEUE, status="completed", worker_name__in=names).values_list("worker_name", flat=True)) != set(names):
        if time.monotonic() > deadline:
            raise RuntimeError("workers did not all warm up")
        wait_jobs([enqueue(user, clip) for _ in names], timeout)


def throughput(user: User, clips: list[tuple[Path, str]], workers: list[str]) -> dict[str, float]:
    """Queue every clip while the queue is paused, resume, wait; first start -> last completion."""
    from django.db.models import Count, Max, Min

    from jobs.engine import broker
    from jobs.models import Job
    from transcription.models import Transcription

    broker.set_paused(QUEUE, True)
    try:
        ids = [enqueue(user, path) for path, _ in clips]
    finally:
        broker.set_paused(QUEUE, False)
    wait_jobs(ids, timeout=600)
    agg = Job.objects.filter(pk__in=ids).aggregate(first=Min("started_at"), last=Max("completed_at"))
    by_worker = dict(Job.objects.filter(pk__in=ids).values_list("worker_name").annotate(n=Count("id")))
    if set(by_worker) != set(workers):
        print(f"  note: jobs per worker {by_worker}", file=sys.stderr)
    rows = {r.job_id: r for r in Transcription.objects.filter(job_id__in=ids)}
    from transcription import selectors

    shares = [check_words(text, selectors.result_text(rows[i]), f"clip {n}") for n, (i, (_, text)) in enumerate(zip(ids, clips))]
    return {
        "seconds": (agg["last"] - agg["first"]).total_seconds(),
        "min_words_back": min(shares),
        "jobs_per_worker": sorted(by_worker.values()),  # type: ignore[dict-item]
    }


def sequential(clips: list[tuple[Path, str]]) -> dict[str, float]:
    from transcription import engine

    t = time.perf_counter()
    texts = [engine.transcribe(path).text for path, _ in clips]
    seconds = time.perf_counter() - t
    shares = [check_words(spoken, heard, f"clip {n} (bare)") for n, ((_, spoken), heard) in enumerate(zip(clips, texts))]
    return {"seconds": seconds, "min_words_back": min(shares)}


# -- clean-up -------------------------------------------------------------------------------------


def clean(worker_names: list[str]) -> None:
    """Delete the bench's user (its keys and transcriptions), the queue's jobs and events, its workers and Redis keys."""
    from django.contrib.auth import get_user_model
    from django.db import connection as db

    from jobs.engine import broker, priority
    from jobs.models import Job, WorkerHeartbeat
    from transcription.models import Transcription

    conn = broker.connection()
    conn.srem(broker.PAUSED_KEY, QUEUE)
    ids = list(Job.objects.filter(queue=QUEUE).values_list("id", flat=True))
    Transcription.objects.filter(owner__username=USERNAME).delete()
    with db.cursor() as cur:
        cur.execute("DELETE FROM jobs_jobevent WHERE queue = %s", [QUEUE])
    Job.objects.filter(queue=QUEUE).delete()
    get_user_model().objects.filter(username=USERNAME).delete()
    WorkerHeartbeat.objects.filter(name__startswith=WORKER_PREFIX).delete()
    keys = [k for k in conn.scan_iter(match=f"rq:*{WORKER_PREFIX}*", count=1000)]
    keys += [f"rq:job:{i}" for i in ids] + broker.listen_keys([QUEUE])
    for i in range(0, len(keys), 1000):
        conn.delete(*keys[i : i + 1000])
    conn.srem("rq:queues", *[broker.rq_key(QUEUE, lv) for lv in priority.LEVELS])
    names = [m for m in conn.smembers("rq:workers") if WORKER_PREFIX.encode() in m]
    if names:
        conn.srem("rq:workers", *names)


# -- report ---------------------------------------------------------------------------------------


def report(fig: dict[str, Any]) -> None:
    def row(label: str, value: float, unit: str, note: str = "") -> None:
        print(f"  {label:<52} {value:>8.3f} {unit:<3} {note}".rstrip())

    ok = "ok" if fig["ratio_full_vs_bare"] <= TARGET_RATIO else "MISSED"
    print()
    print(f"jobconsole transcription bench: TINY (tiny.en, int8, cpu), {fig['cpus']} CPUs, median of {fig['runs']} runs")
    print(f"  one {fig['clip_s']:.1f} s clip (espeak-ng, {fig['clip_words']} words, WAV)")
    row("bare engine.transcribe(), warm model, this process", fig["bare_s"], "s", f"RTF {fig['bare_rtf']:.4f}, {fig['bare_cpu_s']:.2f} s CPU")
    print(f"  full path (daphne, API, queue, 1 warm worker, local storage), polling every {fig['quiet_poll_ms']:.0f} ms")
    row("POST -> job completed_at (row)", fig["full_s"], "s", f"RTF {fig['full_rtf']:.4f}")
    row("  of which POST (upload, store, enqueue) -> 201", fig["full_post_s"], "s")
    row("  of which job created_at -> started_at", fig["full_queue_s"], "s")
    row("  of which worker started_at -> completed_at", fig["full_worker_s"], "s", f"{fig['full_worker_cpu_s']:.2f} s worker CPU")
    row("  server (daphne) CPU per transcription", fig["full_server_cpu_s"], "s", f"{fig['full_polls']:.0f} polls")
    row("ratio full / bare", fig["ratio_full_vs_bare"], "x", f"target <= {TARGET_RATIO:.2f}  {ok}")
    print(f"  the same, polling every {fig['poll_ms']:.0f} ms")
    row("POST -> poll sees completed", fig["fastpoll_s"], "s", f"RTF {fig['fastpoll_rtf']:.4f}")
    row("POST -> job completed_at (row)", fig["fastpoll_row_s"], "s")
    row("  of which worker started_at -> completed_at", fig["fastpoll_worker_s"], "s", f"{fig['fastpoll_worker_cpu_s']:.2f} s worker CPU")
    row("  server (daphne) CPU per transcription", fig["fastpoll_server_cpu_s"], "s", f"{fig['fastpoll_polls']:.0f} polls")
    row("ratio poll-observed / bare", fig["ratio_fastpoll_vs_bare"], "x", "(the polls' own CPU competes with the worker)")
    row("ratio row / bare", fig["ratio_fastpoll_row_vs_bare"], "x")
    print(f"  throughput: {fig['clips']} clips of {fig['short_clip_s']:.1f} s on average ({fig['short_total_s']:.0f} s of audio)")
    row("bare, one after another, 1 process", fig["seq_s"], "s", f"RTF {fig['seq_rtf']:.4f}")
    row("full path, 2 worker processes (first start -> last end)", fig["par_s"], "s", f"RTF {fig['par_rtf']:.4f}, jobs per worker {fig['jobs_per_worker']}")
    row("speed-up 2 workers / 1 process bare", fig["ratio_2workers_vs_seq"], "x", f"({fig['cpus']} cores shared with PostgreSQL and Redis)")
    print(f"  words back in order: min {fig['min_words_back']:.2f} over every transcript (required >= {MIN_WORDS_BACK})")
    print()
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in fig.items()}, sort_keys=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="timed calls of the bare call and of the full path (default 3)")
    parser.add_argument("--clips", type=int, default=20, help="short clips for the throughput figure (default 20)")
    parser.add_argument("--poll-ms", type=float, default=20.0, help="interval of the fast status polls (default 20 ms)")
    parser.add_argument("--quiet-poll-ms", type=float, default=250.0, help="interval of the light status polls (default 250 ms)")
    args = parser.parse_args()
    for tool in ("espeak-ng", "ffmpeg"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed")

    tmp = Path(tempfile.mkdtemp(prefix="bench-tx-"))
    os.environ.setdefault("DATABASE_URL", "postgres://127.0.0.1:5432/h_bench_tx")
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/10")
    os.environ["MEDIA_ROOT"] = str(tmp / "media")  # this process, the server and the workers alike
    os.environ["STORAGE"] = "local"
    os.environ.pop("S3_BUCKET", None)
    os.environ["SECRET_KEY"] = os.environ.get("SECRET_KEY") or "bench-" + secrets.token_hex(16)

    # bench/engine.py, found because this script's folder is first on sys.path. setup_django then
    # puts the project root first, so `transcription` is the app, not this file.
    from engine import _children, output, setup_django, spawn, stop, wait_until

    workers = [f"{WORKER_PREFIX}{secrets.token_hex(3)}-{i}" for i in (1, 2)]
    try:
        setup_django(migrate=True)
        from django.contrib.auth import get_user_model

        from jobs.api.auth import create_api_key
        from jobs.models import WorkerHeartbeat

        clean(workers)
        clip, spoken, clip_s = long_clip(tmp / "clip60.wav")
        shorts = short_clips(tmp, args.clips)
        short_total = sum(duration(p) for p, _ in shorts)
        print(f"clip {clip_s:.1f} s; {len(shorts)} short clips", file=sys.stderr, flush=True)

        # (b) and (c): the bare call in this process, the full path through daphne and one worker
        from transcription import engine

        engine.get_model("TINY", model_dir=None)
        bare_once(clip)  # warm-up
        user = get_user_model().objects.create_user(USERNAME)
        _, key = create_api_key(user=user, name="bench")
        port = free_port()
        from launcher import web

        server = spawn(web.command("127.0.0.1", port, access_log=False)[1:])  # the web server (uvicorn), as `serve` runs it
        w1 = spawn(["manage.py", "worker", QUEUE, "--name", workers[0]])

        def up() -> bool:
            if server.poll() is not None or w1.poll() is not None:
                raise RuntimeError(f"server or worker exited:\n{output(server)}\n{output(w1)}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            except OSError:
                return False
            return WorkerHeartbeat.objects.filter(name=workers[0], stopped_at__isnull=True).exists()

        wait_until(up, 60, "the server and the worker", 0.1)
        api = Api(port, key)
        warm = full_once(api, clip, args.poll_ms / 1000, w1.pid, server.pid)  # loads the model in the worker
        check_words(spoken, str(warm["text"]), "full path warm-up")
        # Interleaved, so that load from elsewhere on the machine falls on all three alike.
        bares: list[tuple[float, float]] = []
        quiet: list[dict[str, Any]] = []
        fast: list[dict[str, Any]] = []
        for r in range(args.runs):
            wall, cpu, text = bare_once(clip)
            bares.append((wall, cpu))
            bare_words = check_words(spoken, text, "bare call")
            for runs, poll in ((quiet, args.quiet_poll_ms), (fast, args.poll_ms)):
                runs.append(full_once(api, clip, poll / 1000, w1.pid, server.pid))
                runs[-1]["words_back"] = check_words(spoken, str(runs[-1]["text"]), f"full path run {r + 1}")
            print(f"  run {r + 1}: bare {wall:.3f} s; full, polls every {args.quiet_poll_ms:.0f} ms "
                  f"{({k: v for k, v in quiet[-1].items() if k != 'text'})}; every {args.poll_ms:.0f} ms "
                  f"{({k: v for k, v in fast[-1].items() if k != 'text'})}", file=sys.stderr, flush=True)
        api.close()
        stop(server)
        bare_s = statistics.median(w for w, _ in bares)
        bare_cpu = statistics.median(c for _, c in bares)

        def med(runs: list[dict[str, Any]], name: str) -> float:
            return float(statistics.median(float(r[name]) for r in runs))

        # (d) throughput: the same clips bare one after another, then on 2 workers
        seq = sequential(shorts)
        print(f"  sequential {seq}", file=sys.stderr, flush=True)
        w2 = spawn(["manage.py", "worker", QUEUE, "--name", workers[1]])
        wait_until(lambda: WorkerHeartbeat.objects.filter(name=workers[1], stopped_at__isnull=True).exists(), 60, "the second worker", 0.1)
        warm_workers(user, workers, shorts[0][0])
        par = throughput(user, shorts, workers)
        print(f"  2 workers {par}", file=sys.stderr, flush=True)
        for p in (w1, w2):
            stop(p)
    finally:
        for p in list(_children):
            stop(p)
        try:
            clean(workers)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    full_s = med(quiet, "row_s")
    fig: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "runs": args.runs,
        "poll_ms": args.poll_ms,
        "quiet_poll_ms": args.quiet_poll_ms,
        "clip_s": clip_s,
        "clip_words": len(words(spoken)),
        "bare_s": bare_s,
        "bare_cpu_s": bare_cpu,
        "bare_rtf": bare_s / clip_s,
        "full_s": full_s,
        "full_rtf": full_s / clip_s,
        "full_post_s": med(quiet, "post_s"),
        "full_queue_s": med(quiet, "queue_s"),
        "full_worker_s": med(quiet, "worker_s"),
        "full_worker_cpu_s": med(quiet, "worker_cpu_s"),
        "full_server_cpu_s": med(quiet, "server_cpu_s"),
        "full_polls": med(quiet, "polls"),
        "ratio_full_vs_bare": full_s / bare_s,
        "fastpoll_s": med(fast, "poll_s"),
        "fastpoll_rtf": med(fast, "poll_s") / clip_s,
        "fastpoll_row_s": med(fast, "row_s"),
        "fastpoll_worker_s": med(fast, "worker_s"),
        "fastpoll_worker_cpu_s": med(fast, "worker_cpu_s"),
        "fastpoll_server_cpu_s": med(fast, "server_cpu_s"),
        "fastpoll_polls": med(fast, "polls"),
        "ratio_fastpoll_vs_bare": med(fast, "poll_s") / bare_s,
        "ratio_fastpoll_row_vs_bare": med(fast, "row_s") / bare_s,
        "clips": len(shorts),
        "short_clip_s": short_total / len(shorts),
        "short_total_s": short_total,
        "seq_s": seq["seconds"],
        "seq_rtf": seq["seconds"] / short_total,
        "par_s": par["seconds"],
        "par_rtf": par["seconds"] / short_total,
        "jobs_per_worker": par["jobs_per_worker"],
        "ratio_2workers_vs_seq": seq["seconds"] / par["seconds"],
        "min_words_back": min([bare_words, seq["min_words_back"], par["min_words_back"], *(float(r["words_back"]) for r in quiet + fast)]),
    }
    report(fig)


if __name__ == "__main__":
    main()
