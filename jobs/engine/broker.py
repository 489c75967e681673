"""Everything the engine keeps in Redis: RQ lists and jobs carrying job ids, and the paused set.

Redis is the carrier, never the truth: all of it can be rebuilt from the database (reconcile).
"""
from __future__ import annotations

import threading
import zlib
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from django.conf import settings
from redis import Redis
from rq import Queue as RQQueue
from rq.job import Job as RQJob
from rq.job import JobStatus
from rq.serializers import resolve_serializer
from rq.utils import now as rq_now
from rq.utils import utcformat

from jobs.engine import priority

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
    return priority.carrier_name(queue, level)


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
    """Hand jobs to RQ in one round trip: an RQ job per id (func jobs.tasks.run_job) on its level's list.

    The RQ job hash is what RQ's own Job.save() writes (so a plain RQ worker can run it too), built
    from one template per RQ queue instead of one RQ Job object per id; the ids go to each list in
    one RPUSH. Bulk enqueue of 10,000 jobs spends a third of its time here otherwise.
    """
    conn = connection()
    count = 0
    enqueued_at = utcformat(rq_now())  # what RQ's own enqueue records; django-rq's page shows the oldest
    templates: dict[tuple[str, int], dict[str, Any]] = {}
    lists: dict[str, list[str]] = {}
    with conn.pipeline(transaction=False) as pipe:
        for item in items:
            name = rq_name(item.queue, priority.level(item.priority))
            timeout = int(item.timeout) + 1
            template = templates.get((name, timeout))
            if template is None:
                template = templates[(name, timeout)] = _job_hash_template(conn, name, timeout)
            mapping: dict[Any, Any] = dict(template)
            mapping["data"] = zlib.compress(_SERIALIZER.dumps((RUN_FUNC, None, (item.id,), {})))
            mapping["description"] = f"{item.queue}:{item.id}"
            mapping["enqueued_at"] = enqueued_at
            pipe.hset(RQJob.redis_job_namespace_prefix + item.id, mapping=mapping)
            lists.setdefault(RQQueue.redis_queue_namespace_prefix + name, []).append(item.id)
            count += 1
        for key, ids in lists.items():
            if at_front:
                pipe.lpush(key, *ids)
            else:
                pipe.rpush(key, *ids)
        if lists:
            pipe.sadd(RQQueue.redis_queues_keys, *lists)
        pipe.execute()
    return count


_SERIALIZER = resolve_serializer(None)


def _job_hash_template(conn: Redis, origin: str, timeout: int) -> dict[str, Any]:
    """The fields RQ's Job.save() writes for one of our jobs, but the per-job data and description."""
    job = RQJob.create(RUN_FUNC, args=("",), connection=conn, timeout=timeout, result_ttl=0, failure_ttl=0, origin=origin, description="")
    # Empty fields read back exactly as absent ones (Job.restore): fewer fields to send per job.
    mapping = {k: v for k, v in job.to_dict().items() if v != ""}
    mapping["status"] = JobStatus.QUEUED.value
    return mapping


# Take the first waiting id, in the keys' order, from a queue that is not paused, and drop its RQ
# hash: what a worker does after BLPOP (pop, paused check, delete) in one round trip and atomically.
POP_READY_SCRIPT = """
for i, key in ipairs(KEYS) do
  if redis.call('SISMEMBER', ARGV[1], ARGV[i + 2]) == 0 then
    local id = redis.call('LPOP', key)
    if id then
      redis.call('DEL', ARGV[2] .. id)
      return {key, id}
    end
  end
end
return false
"""


def pop_ready(script: Any, keys: Sequence[str]) -> tuple[str, str] | None:
    """Without blocking: (job id, queue) of the next waiting job in `keys` (listen_keys order), or None.

    `script` is POP_READY_SCRIPT registered on the caller's connection (Redis.register_script).
    """
    popped = script(keys=keys, args=[PAUSED_KEY, RQJob.redis_job_namespace_prefix, *(key_to_queue(k) for k in keys)])
    if not popped:
        return None
    key, raw_id = popped
    return raw_id.decode(), key_to_queue(key.decode())


def remove_from_lists(job_id: str, queue: str, priority_value: int | None = None) -> None:
    """Take a cancelled waiting job out of its list(s) so no worker pops it."""
    remove_many([(job_id, queue, priority_value)])


def remove_many(items: Iterable[tuple[str, str, int | None]]) -> None:
    """Take cancelled jobs (id, queue, priority or None for every level) out of their lists, in one round trip."""
    conn = connection()
    with conn.pipeline(transaction=False) as pipe:
        for job_id, queue, prio in items:
            levels = priority.LEVELS if prio is None else (priority.level(prio),)
            for lv in levels:
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
