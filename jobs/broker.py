"""Everything the engine keeps in Redis: RQ lists and jobs carrying job ids, and the paused set.

Redis is the carrier, never the truth: all of it can be rebuilt from the database (reconcile).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Iterable, Sequence

from django.conf import settings
from redis import Redis
from rq import Queue as RQQueue
from rq.job import Job as RQJob, JobStatus

from jobs import priority

PAUSED_KEY = "jobs:paused"
RUN_FUNC = "jobs.tasks.run_job"

_local = threading.local()


def connection() -> Redis:
    """This process's Redis client (one per thread; the pool reconnects after a Redis restart)."""
    conn = getattr(_local, "conn", None)
    url = settings.REDIS_URL
    if conn is None or getattr(_local, "url", None) != url:
        conn = Redis.from_url(url, health_check_interval=30, socket_keepalive=True)
        _local.conn, _local.url = conn, url
    return conn


def reset_connection() -> None:
    """Forget this thread's client (after fork, or when settings change in tests)."""
    _local.conn = None


def rq_name(queue: str, level: int) -> str:
    """The RQ queue holding `queue`'s jobs of one priority level."""
    return f"{queue}.p{level:03d}"


def rq_key(queue: str, level: int) -> str:
    return RQQueue.redis_queue_namespace_prefix + rq_name(queue, level)


def listen_keys(queues: Sequence[str]) -> list[str]:
    """RQ list keys for BLPOP, highest level first, the queues interleaved within a level."""
    return [rq_key(q, lv) for lv in reversed(priority.LEVELS) for q in queues]


def key_to_queue(key: str) -> str:
    return key[len(RQQueue.redis_queue_namespace_prefix):].rsplit(".p", 1)[0]


@dataclass(frozen=True)
class Carried:
    """What RQ needs to carry one job: its id, queue, priority and time limit."""

    id: str
    queue: str
    priority: int
    timeout: float


def push(items: Iterable[Carried], *, at_front: bool = False) -> int:
    """Hand jobs to RQ in one round trip: an RQ job per id (func jobs.tasks.run_job) on its level's list."""
    conn = connection()
    count = 0
    queues: dict[str, RQQueue] = {}
    with conn.pipeline(transaction=False) as pipe:
        for item in items:
            name = rq_name(item.queue, priority.level(item.priority))
            rq_queue = queues.get(name)
            if rq_queue is None:
                rq_queue = queues[name] = RQQueue(name, connection=conn)
            job = RQJob.create(
                RUN_FUNC,
                args=(item.id,),
                id=item.id,
                connection=conn,
                timeout=int(item.timeout) + 1,
                result_ttl=0,
                failure_ttl=0,
                origin=name,
                description=f"{item.queue}:{item.id}",
            )
            job.set_status(JobStatus.QUEUED, pipeline=pipe)
            job.save(pipeline=pipe)
            if at_front:
                pipe.lpush(rq_queue.key, item.id)
            else:
                pipe.rpush(rq_queue.key, item.id)
            count += 1
        for rq_queue in queues.values():
            pipe.sadd(RQQueue.redis_queues_keys, rq_queue.key)
        pipe.execute()
    return count


def forget(job_id: str) -> None:
    """Drop a job's RQ hash once the database holds its outcome."""
    connection().delete(RQJob.key_for(job_id))


def remove_from_lists(job_id: str, queue: str) -> None:
    """Take a cancelled waiting job out of its lists so no worker pops it."""
    conn = connection()
    with conn.pipeline(transaction=False) as pipe:
        for lv in priority.LEVELS:
            pipe.lrem(rq_key(queue, lv), 0, job_id)
        pipe.delete(RQJob.key_for(job_id))
        pipe.execute()


def carried_ids(queue: str) -> set[str]:
    """Every job id waiting in `queue`'s RQ lists."""
    conn = connection()
    with conn.pipeline(transaction=False) as pipe:
        for lv in priority.LEVELS:
            pipe.lrange(rq_key(queue, lv), 0, -1)
        lists = pipe.execute()
    return {i.decode() for ids in lists for i in ids}


def waiting_count(queue: str) -> int:
    conn = connection()
    with conn.pipeline(transaction=False) as pipe:
        for lv in priority.LEVELS:
            pipe.llen(rq_key(queue, lv))
        return sum(pipe.execute())


def set_paused(queue: str, paused: bool) -> None:
    if paused:
        connection().sadd(PAUSED_KEY, queue)
    else:
        connection().srem(PAUSED_KEY, queue)


def paused_queues() -> set[str]:
    return {q.decode() if isinstance(q, bytes) else q for q in connection().smembers(PAUSED_KEY)}


def sync_paused(paused: set[str]) -> None:
    """Make Redis's paused set equal the database's (after Redis lost it)."""
    conn = connection()
    with conn.pipeline() as pipe:
        pipe.delete(PAUSED_KEY)
        if paused:
            pipe.sadd(PAUSED_KEY, *paused)
        pipe.execute()


def ping() -> bool:
    try:
        return bool(connection().ping())
    except Exception:
        return False
