"""Events benchmark: a worker's progress update to its arrival at WebSocket clients, through the web server (uvicorn).

    DATABASE_URL=postgres://127.0.0.1:5432/h_bench_events REDIS_URL=redis://127.0.0.1:6379/12 \
        .venv/bin/python bench/events.py [--updates 1000] [--clients 1,10,50,100,200]

It starts the web server (uvicorn, config.asgi:application) on a free loopback port and one engine worker on the
bench queue, then:
  (a) one client (API key, staff) subscribed to the queue `bench` while the worker runs a `sleep`
      job reporting --updates progress updates: delay = arrival at the client - the event's "at"
      (the moment the hook saw the committed progress), p50/p95/p99/max;
  (b) 1, 10, 50, ... clients connected to the one web server process, all subscribed, while a job
      reports --step-updates updates: p50/p95 over every client's events, stopping at the first
      step whose p95 is more than --factor times (a)'s p95.
It prints a table and ends with one JSON line. Its rows, user and Redis keys are deleted at the end.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from engine import (
    QUEUE,
    clean_engine,
    engine_worker,
    free_port,
    output,
    percentile,
    port_open,
    setup_django,
    spawn,
    stop,
    wait_until,
)


async def client(url: str, ready: asyncio.Event | None, done: asyncio.Event, delays: list[float], job_ids: set[str]) -> None:
    """Connect, subscribe to the bench queue, and record each progress event's delay until `done`."""
    import websockets

    async with websockets.connect(url, max_queue=None, open_timeout=30) as ws:
        await ws.send(json.dumps({"action": "subscribe", "topic": "queue", "id": QUEUE}))
        answer = json.loads(await ws.recv())
        assert answer["type"] == "subscribed", answer
        if ready is not None:
            ready.set()
        while True:
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout=1.0)
            except asyncio.TimeoutError:
                if done.is_set():
                    return
                continue
            now = time.time()
            event = json.loads(raw)
            if event["jobId"] not in job_ids:
                continue
            if event["type"] == "job_progress":
                delays.append((now - event["at"]) * 1000)
            elif event["type"] == "job_completed":
                return


async def measure(url: str, clients: int, updates: int, seconds: float) -> tuple[list[float], int]:
    """`clients` connected sockets while one job reports `updates` progress updates; every delay in ms and how many arrived."""
    from asgiref.sync import sync_to_async

    from jobs import services

    delays: list[float] = []
    job_ids: set[str] = set()
    done = asyncio.Event()
    readies = [asyncio.Event() for _ in range(clients)]
    tasks = []
    for i in range(clients):
        tasks.append(asyncio.create_task(client(url, readies[i], done, delays, job_ids)))
        if i % 25 == 24:
            await asyncio.sleep(0.05)  # do not overrun the listen backlog
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), timeout=60)
    job, _ = await sync_to_async(services.enqueue)(services.JobSpec(type="sleep", queue=QUEUE, payload={"seconds": seconds, "steps": updates}))
    job_ids.add(job.id)
    try:
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=seconds + 60)
    finally:
        done.set()
        for t in tasks:
            t.cancel()
    return delays, len(delays)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    p.add_argument("--updates", type=int, default=1000)
    p.add_argument("--seconds", type=float, default=5.0, help="the 1,000-update job's run time")
    p.add_argument("--clients", default="1,10,50,100,200")
    p.add_argument("--step-updates", type=int, default=200)
    p.add_argument("--factor", type=float, default=2.0)
    args = p.parse_args()

    setup_django(migrate=True)
    from django.contrib.auth import get_user_model

    from jobs.api.auth import create_api_key
    from jobs.engine import broker

    conn = broker.connection()
    clean_engine(conn)
    User = get_user_model()
    User.objects.filter(username="bench-events").delete()
    user = User.objects.create_user("bench-events", is_staff=True)
    raw = create_api_key(user=user, name="bench")[1]
    port = free_port()
    from launcher import web

    server = spawn(web.command("127.0.0.1", port, access_log=False)[1:])  # the web server (uvicorn), as `serve` runs it
    worker = engine_worker("bench-engine-events", burst=False)
    url = f"ws://127.0.0.1:{port}/ws/events?api_key={raw}"
    result: dict[str, Any] = {}
    try:
        wait_until(lambda: port_open(port) or server.poll() is not None, 30, "the web server")
        if server.poll() is not None:
            raise RuntimeError(f"the web server exited:\n{output(server)}")
        asyncio.run(measure(url, 1, 20, 0.2))  # warm-up: imports, connections
        delays, n = asyncio.run(measure(url, 1, args.updates, args.seconds))
        base_p95 = percentile(delays, 0.95)
        result = {
            "updates": args.updates, "received": n, "p50_ms": round(percentile(delays, 0.5), 2), "p95_ms": round(base_p95, 2),
            "p99_ms": round(percentile(delays, 0.99), 2), "max_ms": round(max(delays), 2), "steps": [],
        }
        print(f"jobconsole events bench: uvicorn + 1 engine worker, loopback, {args.updates} progress updates in {args.seconds:.1f} s")
        print(f"  1 client: received {n}/{args.updates}")
        for label, key in (("p50", "p50_ms"), ("p95", "p95_ms"), ("p99", "p99_ms"), ("max", "max_ms")):
            print(f"  progress -> client {label:<4} {result[key]:>10.2f} ms")
        print(f"  clients on one web server process, {args.step_updates} updates each step, limit p95 <= {args.factor:g} x {base_p95:.2f} ms")
        print(f"  {'clients':>8} {'received':>10} {'p50 ms':>9} {'p95 ms':>9}")
        held = 0
        for count in [int(c) for c in args.clients.split(",")]:
            step_seconds = args.step_updates * args.seconds / args.updates
            delays, n = asyncio.run(measure(url, count, args.step_updates, step_seconds))
            p50, p95 = percentile(delays, 0.5), percentile(delays, 0.95)
            ok = p95 <= args.factor * base_p95 and n == count * args.step_updates
            result["steps"].append({"clients": count, "received": n, "expected": count * args.step_updates, "p50_ms": round(p50, 2), "p95_ms": round(p95, 2), "ok": ok})
            print(f"  {count:>8} {n:>10} {p50:>9.2f} {p95:>9.2f}  {'ok' if ok else 'over'}")
            if not ok:
                break
            held = count
        result["clients_held"] = held
        print(f"  clients held within {args.factor:g} x p95: {held}")
    finally:
        stop(worker)
        stop(server)
        clean_engine(conn)
        User.objects.filter(username="bench-events").delete()
        for key in conn.scan_iter(match="asgi*", count=1000):
            conn.delete(key)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
