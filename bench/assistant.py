"""Assistant bench: seed 5's text commands through the whole fan-out, on the worker set of `make run`, against the bare work.

    DATABASE_URL=postgres://127.0.0.1:5432/h_bench_assistant REDIS_URL=redis://127.0.0.1:6379/9 \
        .venv/bin/python bench/assistant.py [--commands 500] [--clients 8] [--seed 5] [--quick]

Commands: --commands texts (--quick: 50) drawn with a seeded generator from seed 5's intents as the rules
read them: create a task (25%), send an email to an address at MAIL_DOMAIN (25%), remind me ... in 10
minutes (20%: its notification is delayed and not on the reply path), what's my next meeting (20%,
answered from three events the bench writes into the user's calendar) and sentences no rule reads (10%:
they go to ai-processing's classifier). Each text is checked against assistant.intents.read first.
  (a) system: the processes `manage.py serve` starts (launcher's `plan()`: the web server, one
      `manage.py worker` per group of jobs.selectors.worker_groups() with its argv, and the scheduler),
      less the group of bench/engine.py's own `bench` queue, which bench_env() declares. After a warm-up
      (2 commands of each rule intent and 10 for ai-processing, so that its processes load WordLlama),
      --clients threads POST /api/assistant/commands {userId, text, conversationId} with an API key, and
      the bench waits until every command is REPLIED or FAILED (any FAILED fails the bench), then until
      the commands' other jobs (email, task sync) have finished.
      commands/s: commands / (just before the first POST -> the last replied_at); latency: replied_at -
      created_at of each command (POST -> the reply's WAV in storage, both written on this machine).
      Per queue, over the commands' jobs (group_ref "command:<id>"), from their events (the queues keep
      100 completed jobs, so the scheduler's retention deletes rows during a full run; events stay):
      wait (created -> last active) and run (last active -> completed) p50, and the queue's share of
      the sum of wait + run over all queues. Jobs per command counts every job, the delayed reminders'.
  (b) baseline, in this process once the system is stopped: for the same texts and the replies the
      system gave, assistant.intents.read(text) and espeak-ng speaking the reply into a WAV (the
      synthesis job's command line), one after another. Ratio: system commands/s / baseline commands/s.
Settings are production-like (DEBUG=false); EMAIL_HOST is unset, so Django's file backend writes the
emails under var/mail (settings fix that path; the bench deletes the files that name MAIL_DOMAIN);
MEDIA_ROOT (the replies' WAVs) is a temporary directory. The bench owns its database (created and
migrated if missing) and its Redis database: at the end, also after a failure, it stops its processes,
deletes its user (commands, tasks, emails, notifications, calendar), every queue's jobs, events and
counts and the workers' rows, and flushes that Redis database. It ends with one JSON line.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
for _path in (HERE, HERE.parent):  # bench/ for bench/files.py's `engine`, then the project first: `assistant` is its app
    sys.path.insert(0, str(_path))

from bench import files as files_bench  # noqa: E402
from bench.ai import alive, row, show_logs  # noqa: E402
from bench.engine import _ts, free_port, percentile, port_open, setup_django, wait_until  # noqa: E402
from bench.files import halt, post_all, spawn  # noqa: E402

USER = "bench-assistant"
BENCH_GROUP = "bench"  # bench_env() declares bench/engine.py's queue in this group: not part of `make run`
MAIL_DOMAIN = "assistant-bench.example.com"
MIX = (("create_task", 25), ("send_email", 25), ("remind", 20), ("next_meeting", 20), ("ai", 10))
WARMUP = {"create_task": 2, "send_email": 2, "remind": 2, "next_meeting": 2, "ai": 10}

# -- commands -------------------------------------------------------------------------------------

NAMES = ("ana", "daniel", "aisha", "tom", "priya", "lukas", "chen", "sofia", "omar", "hannah")
CITIES = ("Lisbon", "Toronto", "Nairobi", "Osaka", "Denver", "Glasgow", "Porto", "Dublin")
VERBS = ("renew", "review", "order", "book", "fix", "pay", "update", "cancel", "check", "print")
THINGS = ("parking permit", "quarterly report", "team lunch", "hotel room", "laptop battery", "insurance bill",
          "conference ticket", "train pass", "budget sheet", "office plants", "dentist appointment", "visa papers")
SAYINGS = ("the figures are ready for review", "I will be ten minutes late", "please bring the signed contract",
           "the meeting moves to Thursday", "thanks for your help yesterday", "can we talk this afternoon")
MEETING = ("What's my next meeting?", "When is my next meeting?", "What's my upcoming appointment?", "What is next on my calendar?")
UNKNOWN = ("How is the weather in {city} today?", "Tell me something funny about the {thing}.", "Who won the match in {city} last night?",
           "Play some quiet music while I {verb} the {thing}.", "How far is {city} from here?", "I wonder whether the {thing} is worth it.")


def command_text(kind: str, rng: random.Random) -> str:
    """One command of `kind` (an intent, or "ai": a sentence no rule reads)."""
    slots = {"verb": rng.choice(VERBS), "thing": rng.choice(THINGS), "city": rng.choice(CITIES)}
    if kind == "create_task":
        return "Create a task to {verb} the {thing}".format(**slots)
    if kind == "send_email":
        return f"Send an email to {rng.choice(NAMES)}@{MAIL_DOMAIN} about the {slots['thing']} saying {rng.choice(SAYINGS)}"
    if kind == "remind":
        return "Remind me to {verb} the {thing} in 10 minutes".format(**slots)
    if kind == "next_meeting":
        return rng.choice(MEETING)
    return rng.choice(UNKNOWN).format(**slots)


def commands(n: int, seed: int) -> list[tuple[str, str]]:
    """`n` (kind, text) in the MIX's shares, shuffled; the same for the same seed. Each text is read as its kind expects."""
    from assistant import intents

    rng = random.Random(seed)
    kinds = [kind for kind, share in MIX for _ in range(round(n * share / 100))]
    kinds = (kinds + [kind for kind, _ in MIX] * n)[:n]
    rng.shuffle(kinds)
    out = [(kind, command_text(kind, rng)) for kind in kinds]
    for kind, text in out:
        reading = intents.read(text)
        if (reading.intent if reading else "ai") != kind:
            raise RuntimeError(f"the rules read {text!r} as {reading}, not {kind}")
    return out


def warmup_commands(seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed + 1)
    return [(kind, command_text(kind, rng)) for kind, n in WARMUP.items() for _ in range(n)]


# -- the system -----------------------------------------------------------------------------------


@dataclass
class System:
    """The web server, workers and scheduler of `make run`, and the bench user's key."""

    base: str
    api_key: str
    owner_id: int
    procs: list[subprocess.Popen[bytes]]

    def post(self, batch: list[tuple[str, str]], clients: int) -> files_bench.Posted:
        bodies = [(json.dumps({"userId": f"bench-{i % clients}", "text": text, "conversationId": f"bench-conv-{i % clients}"}).encode(),
                   "application/json") for i, (_, text) in enumerate(batch)]
        return post_all(f"{self.base}/api/assistant/commands", bodies, clients, self.api_key, {202})


def processes(port: int) -> list[tuple[str, list[str]]]:
    """What `manage.py serve` runs (its plan()), without bench/engine.py's group."""
    from launcher.management.commands.serve import plan

    return [(name, argv) for name, argv in plan(host="127.0.0.1", port=port) if name != f"worker-{BENCH_GROUP}"]


def workers_up() -> bool:
    """Every worker group has its processes (or, in threads mode, a thread) registered and alive."""
    from jobs import selectors
    from jobs.models import WorkerHeartbeat

    live = list(WorkerHeartbeat.objects.filter(stopped_at__isnull=True).values_list("queues", flat=True))
    for group in selectors.worker_groups():
        if group.name != BENCH_GROUP:
            need = group.processes if group.mode == "processes" else 1
            if sum(1 for queues in live if set(group.queues) <= set(queues)) < need:
                return False
    return True


def seed_calendar(user: Any) -> None:
    """Three coming events, so that "what's my next meeting" has one to tell (rows written directly: no feed is fetched)."""
    from django.utils import timezone

    from assistant.models import CalendarEvent, CalendarFeed

    feed = CalendarFeed.objects.create(owner=user, url=f"https://{MAIL_DOMAIN}/calendar.ics", name="bench")
    now = timezone.now()
    for i, (title, hours) in enumerate((("Design review", 2), ("Budget planning", 26), ("Team offsite", 50))):
        start = now + timedelta(hours=hours)
        CalendarEvent.objects.create(owner=user, feed=feed, uid=f"bench-{i}", summary=title, location="Room 4", starts_at=start, ends_at=start + timedelta(hours=1))


def start_system(extra: dict[str, str]) -> System:
    from django.contrib.auth import get_user_model

    from jobs.api.auth import create_api_key

    user = get_user_model().objects.create_user(USER)
    seed_calendar(user)
    api_key = create_api_key(user=user, name="bench")[1]
    port = free_port()
    procs = [spawn(argv, extra) for _, argv in processes(port)]

    def up() -> bool:
        alive(procs)
        return port_open(port) and workers_up()

    wait_until(up, 240, "the web server and the workers", every=0.5)
    return System(base=f"http://127.0.0.1:{port}", api_key=api_key, owner_id=user.pk, procs=procs)


def wait_replied(system: System, ids: list[str], timeout: float) -> None:
    """Until every command is REPLIED or FAILED; a dead process or the timeout is an error. Progress every 15 s."""
    from django.db.models import Count

    from assistant.models import Command

    deadline, shown = time.monotonic() + timeout, time.monotonic()
    while True:
        alive(system.procs)
        counts = dict(Command.objects.filter(pk__in=ids).values_list("status").annotate(c=Count("id")))
        if counts.get("REPLIED", 0) + counts.get("FAILED", 0) == len(ids):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"not all replied within {timeout:.0f} s: {counts}")
        if time.monotonic() - shown > 15:
            print(f"    ... {counts}", flush=True)
            shown = time.monotonic()
        time.sleep(0.5)


def wait_settled(system: System, refs: list[str], timeout: float) -> None:
    """Until no job of the commands waits, runs or is due within a minute (a retry's backoff): the emails and task
    syncs after the replies; the reminders, delayed 10 minutes, aside."""
    from django.db.models import Q
    from django.utils import timezone

    from jobs.models import Job

    def settled() -> bool:
        alive(system.procs)
        soon = Q(status="delayed", run_at__lte=timezone.now() + timedelta(seconds=60))
        return not Job.objects.filter(Q(status__in=["waiting", "active"]) | soon, group_ref__in=refs).exists()

    wait_until(settled, timeout, "the commands' other jobs", every=0.5)


# -- figures --------------------------------------------------------------------------------------


def command_figures(ids: list[str], posted: files_bench.Posted) -> dict[str, Any]:
    """commands/s (first POST -> last replied_at), latency (created_at -> replied_at), failures, who understood."""
    from assistant.models import Command

    rows = list(Command.objects.filter(pk__in=ids).values_list("status", "created_at", "replied_at", "understood_by", "failed_reason"))
    replied = [r for r in rows if r[0] == "REPLIED"]
    latency = [(_ts(r[2]) - _ts(r[1])) * 1000 for r in replied] or [0.0]
    last = max((_ts(r[2]) for r in replied), default=posted.t0_wall + posted.elapsed_s)
    return {
        "commands": len(rows), "s": round(last - posted.t0_wall, 3), "commands_per_s": round(len(replied) / (last - posted.t0_wall), 2),
        "latency_ms": {"p50": round(percentile(latency, 0.5), 1), "p95": round(percentile(latency, 0.95), 1), "max": round(max(latency), 1)},
        "failed": len(rows) - len(replied), "failed_reasons": sorted({r[4][:300] for r in rows if r[0] == "FAILED"})[:5],
        "understood_by_ai": sum(1 for r in replied if r[3] == "ai"),
        "post_ms": {"p50": posted.p(0.5), "p95": posted.p(0.95)}, "posted_s": round(posted.elapsed_s, 3),
    }


def queue_figures(refs: list[str]) -> dict[str, Any]:
    """Per queue, from the commands' jobs' events: jobs, wait and run p50 (ms), share of all queues' wait + run; jobs per command."""
    from jobs.models import JobEvent

    jobs: dict[str, dict[str, Any]] = {}
    for job_id, queue, status, at in JobEvent.objects.filter(group_ref__in=refs).order_by("id").values_list("job_id", "queue", "to_status", "at"):
        job = jobs.setdefault(job_id, {"queue": queue, "created": _ts(at)})
        if status:
            job[status], job["last"] = _ts(at), status  # the last of each: a retried job's last run
            job["runs"] = job.get("runs", 0) + (status == "active")
    per: dict[str, dict[str, list[float]]] = {}
    for job in jobs.values():
        if "completed" in job and "active" in job:
            q = per.setdefault(job["queue"], {"wait": [], "run": []})
            q["wait"].append((job["active"] - job["created"]) * 1000)
            q["run"].append((job["completed"] - job["active"]) * 1000)
    total = sum(sum(q["wait"]) + sum(q["run"]) for q in per.values()) or 1.0
    queues = {
        name: {"jobs": len(q["run"]), "wait_ms_p50": round(percentile(q["wait"], 0.5), 1), "run_ms_p50": round(percentile(q["run"], 0.5), 1),
               "share": round((sum(q["wait"]) + sum(q["run"])) / total, 3)}
        for name, q in sorted(per.items(), key=lambda item: -sum(item[1]["wait"]) - sum(item[1]["run"]))
    }
    unfinished: dict[str, int] = {}
    for job in jobs.values():
        if job.get("last") != "completed":
            unfinished[f"{job['queue']} {job.get('last')}"] = unfinished.get(f"{job['queue']} {job.get('last')}", 0) + 1
    return {"queues": queues, "jobs_per_command": round(len(jobs) / max(len(refs), 1), 2), "jobs_not_completed": unfinished,
            "jobs_retried": sum(1 for job in jobs.values() if job.get("runs", 0) > 1)}


def baseline(texts: list[str], replies: list[str]) -> dict[str, float]:
    """In this process, one command after another: the rules read the text, espeak-ng speaks the reply into a WAV."""
    from assistant import intents, services
    from pipelines import media

    with tempfile.TemporaryDirectory(prefix="bench-assistant-") as tmp:
        out = str(Path(tmp) / "reply.wav")
        media.run_tool(["espeak-ng", "-v", services.VOICE, "-s", services.SPEED, "-w", out, "Warm-up."])
        t = time.perf_counter()
        for text, reply in zip(texts, replies):
            intents.read(text)
            media.run_tool(["espeak-ng", "-v", services.VOICE, "-s", services.SPEED, "-w", out, reply])
        s = time.perf_counter() - t
    return {"s": round(s, 3), "commands_per_s": round(len(texts) / s, 2), "ms_per_command": round(s * 1000 / len(texts), 1)}


# -- cleanup --------------------------------------------------------------------------------------


def clean(conn: Any) -> None:
    """The bench owns its database and Redis db: every queue's jobs, events and counts, the user and what cascades
    from it, every worker's row (worker_prefix "": the workers of `make run` pick their own names), then FLUSHDB."""
    from jobs.engine import conf

    files_bench.clean_bench(conn, tuple(conf.all_queues()), user=USER, worker_prefix="", redis_patterns=())
    conn.flushdb()


def clean_mail(before: set[str]) -> None:
    """The emails the bench sent: the file backend's new files that name MAIL_DOMAIN."""
    from django.conf import settings

    folder = Path(getattr(settings, "EMAIL_FILE_PATH", "") or "/nonexistent")
    for path in folder.glob("*") if folder.is_dir() else []:
        if path.name not in before and MAIL_DOMAIN in path.read_text(errors="replace"):
            path.unlink(missing_ok=True)


def mail_files() -> set[str]:
    from django.conf import settings

    folder = Path(getattr(settings, "EMAIL_FILE_PATH", "") or "/nonexistent")
    return {p.name for p in folder.glob("*")} if folder.is_dir() else set()


# -- report and main ------------------------------------------------------------------------------


def report(result: dict[str, Any], args: argparse.Namespace) -> None:
    lat = result["latency_ms"]
    print(f"  system: {result['commands']} commands, {args.clients} clients, {result['processes']} processes of `make run`")
    row("first POST -> last reply's audio stored", f"{result['commands_per_s']:.2f} commands/s", f"{result['s']:.2f} s")
    row("POST -> REPLIED p50 / p95 / max", f"{lat['p50']:.0f} / {lat['p95']:.0f} / {lat['max']:.0f} ms", "created_at -> replied_at")
    row("client POST p50 / p95", f"{result['post_ms']['p50']:.1f} / {result['post_ms']['p95']:.1f} ms", f"all posted in {result['posted_s']:.2f} s")
    row("failed, understood by ai-processing", f"{result['failed']}, {result['understood_by_ai']}", "; ".join(result["failed_reasons"])[:200])
    row("jobs per command", f"{result['jobs_per_command']:.2f}", f"retried {result['jobs_retried']}; not completed: {result['jobs_not_completed'] or 'none'}")
    print(f"    {'queue':<22} {'jobs':>6} {'wait p50 ms':>12} {'run p50 ms':>11} {'share':>7}")
    for name, q in result["queues"].items():
        print(f"    {name:<22} {q['jobs']:>6} {q['wait_ms_p50']:>12.1f} {q['run_ms_p50']:>11.1f} {q['share']:>7.1%}")
    b = result["baseline"]
    print("  baseline: this process, one command after another (intents.read + espeak-ng to a WAV)")
    row(f"{result['commands']} commands", f"{b['commands_per_s']:.2f} commands/s", f"{b['ms_per_command']:.1f} ms/command")
    row("system / baseline", f"{result['ratio']:.2f} x", f"on {os.cpu_count()} CPUs")


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    p.add_argument("--commands", type=int, default=500, help="text commands")
    p.add_argument("--clients", type=int, default=8, help="client threads posting the commands")
    p.add_argument("--seed", type=int, default=5, help="of the commands")
    p.add_argument("--quick", action="store_true", help="a short try: --commands 50")
    args = p.parse_args()
    if args.quick:
        args.commands = 50
    if min(args.commands, args.clients) < 1:
        p.error("--commands and --clients must be at least 1")
    return args


def measure(args: argparse.Namespace, batch: list[tuple[str, str]], extra: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
    """The system's figures, and the reply of each command in `batch` (for the baseline); the processes are stopped after."""
    from assistant.models import Command

    system = start_system(extra)
    warm = warmup_commands(args.seed)
    posted = system.post(warm, 4)
    wait_replied(system, [str(b["commandId"]) for b in posted.bodies], timeout=300)
    print(f"  ready: {len(system.procs)} processes, warmed up with {len(warm)} commands", flush=True)
    posted = system.post(batch, args.clients)
    ids = [str(b["commandId"]) for b in posted.bodies]
    refs = [f"command:{i}" for i in ids]
    wait_replied(system, ids, timeout=max(300.0, len(ids) * 2.0))
    result = command_figures(ids, posted)
    wait_settled(system, refs, timeout=300)
    result.update(queue_figures(refs), processes=len(system.procs))
    replies = dict(Command.objects.filter(pk__in=ids).values_list("id", "reply_text"))
    for proc in system.procs:
        halt(proc)
    return result, [replies[i] for i in ids]


def main() -> None:
    args = parse()
    media = tempfile.mkdtemp(prefix="bench-assistant-media-")
    extra = {"EMAIL_HOST": "", "MEDIA_ROOT": media}
    os.environ.update(extra)  # this process's settings as the children's
    setup_django(migrate=True)
    from jobs.engine import broker

    conn = broker.connection()
    clean(conn)
    before = mail_files()
    batch = commands(args.commands, args.seed)
    print(f"jobconsole assistant bench: {args.commands} text commands ({', '.join(f'{k} {s}%' for k, s in MIX)}), {args.clients} clients, "
          f"the processes of `make run`, {os.cpu_count()} CPUs", flush=True)
    try:
        result, replies = measure(args, batch, extra)
        result["baseline"] = baseline([text for _, text in batch], replies)
    except BaseException:
        show_logs()
        raise
    finally:
        for proc in list(files_bench._procs):
            halt(proc)
        clean(conn)
        clean_mail(before)
        shutil.rmtree(media, ignore_errors=True)
    result["ratio"] = round(result["commands_per_s"] / result["baseline"]["commands_per_s"], 3)
    report(result, args)
    line = {key: result[key] for key in ("commands", "commands_per_s", "latency_ms", "queues", "failed", "ratio", "jobs_per_command")}
    line.update(bench="assistant", clients=args.clients, baseline_commands_per_s=result["baseline"]["commands_per_s"], cpus=os.cpu_count())
    print()
    print(json.dumps(line, sort_keys=True))
    if result["failed"]:
        sys.exit(f"{result['failed']} commands FAILED: {result['failed_reasons']}")


if __name__ == "__main__":
    main()
