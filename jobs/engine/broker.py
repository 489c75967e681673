"""Everything the engine keeps in Redis: RQ lists and jobs carrying job ids, and the paused set.

Redis is the carrier, never the truth: all of it can be rebuilt from the database (reconcile).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from django.conf import settings
from redis import Redis
from rq import Queue as RQQueue
from rq.job import Job as RQJob

from jobs.engine import priority

PAUSED_KEY = "jobs:paused"
#: What django-rq shows as an engine job's function (CarrierQueue): the engine runs it, not RQ.
RUN_FUNC = "jobs.engine.runner.run"

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
    """What RQ needs to carry one job: its id, queue, priority and time limit (and its owner, for fair queues)."""

    id: str
    queue: str
    priority: int
    timeout: float
    owner: int | None = None


def meta_key(queue: str) -> str:
    """A fair queue's hash of its waiting jobs: id -> "<waiting since, epoch s>|<owner id or empty>"."""
    return f"jobs:meta:{queue}"


def running_key(queue: str, owner: int | str) -> str:
    """A per-owner-limited queue's running jobs of one owner: a sorted set of ids scored by lease expiry."""
    return f"jobs:running:{queue}:{owner}"


def push(items: Iterable[Carried], *, at_front: bool = False) -> int:
    """Hand jobs to Redis in one round trip: each id onto its queue's list for its priority level.

    Only the id travels (and, for a fair queue, its waiting-since and owner in the queue's meta
    hash): the row holds everything else. No RQ job hash is written; stock RQ workers cannot run
    engine jobs (they keep no database heartbeat) and django-rq's pages read the lists through
    CarrierQueue. Bulk enqueue of 10,000 jobs spent 40% of its time building those hashes.
    """
    from jobs.engine import conf

    conn = connection()
    count = 0
    now = time.time()
    fair: dict[str, bool] = {}
    lists: dict[str, list[str]] = {}
    with conn.pipeline(transaction=False) as pipe:
        for item in items:
            lists.setdefault(rq_key(item.queue, priority.level(item.priority)), []).append(item.id)
            if item.queue not in fair:
                fair[item.queue] = conf.get_queue(item.queue).fair
            if fair[item.queue]:
                pipe.hset(meta_key(item.queue), item.id, f"{now:.3f}|{'' if item.owner is None else item.owner}")
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


class CarrierQueue(RQQueue):
    """django-rq's view of an engine list (settings.RQ's QUEUE_CLASS): its ids, read without touching them.

    RQ's own Queue.fetch_job drops an id whose job hash is missing, and the engine writes none, so
    its pages would empty the lists they show. Here each id reads as an unsaved RQ job that names it.
    """

    def fetch_job(self, job_id: str) -> RQJob | None:  # noqa: D102
        from datetime import timezone as dt_timezone

        from jobs.models import Job

        job = RQJob.create(RUN_FUNC, args=(job_id,), id=job_id, connection=self.connection, origin=self.name, description=f"engine job {job_id}")
        row = Job.objects.filter(pk=job_id).values("created_at", "updated_at").first()
        if row is not None:  # RQ keeps naive UTC; enqueued: when the row last became waiting
            job.created_at = row["created_at"].astimezone(dt_timezone.utc).replace(tzinfo=None)
            job.enqueued_at = row["updated_at"].astimezone(dt_timezone.utc).replace(tzinfo=None)
        return job


# Take the first waiting id, in the keys' order, from a queue that is not paused: what a worker does
# after BLPOP (pop, paused check) in one round trip and atomically.
POP_READY_SCRIPT = """
for i, key in ipairs(KEYS) do
  if redis.call('SISMEMBER', ARGV[1], ARGV[i + 1]) == 0 then
    local id = redis.call('LPOP', key)
    if id then
      return {key, id}
    end
  end
end
return false
"""


# The dequeue of fair queues (aging, per-owner limit): for each list (in the keys' order, paused
# queues skipped) its candidate is the head, or with a per-owner limit the first of the next
# WINDOW ids whose owner runs fewer than the limit (expired leases dropped first). A candidate's
# level is its list's rank plus one per `aging` seconds it has waited; the highest level wins,
# then the one waiting longest, then the keys' order. The winner leaves its list (LPOP, or LREM
# past the head), its meta is dropped, and under a per-owner limit it takes a lease in
# its owner's running set. ARGV: paused key, now, lease seconds, window, then per key:
# queue, rank, aging (0: none), per-owner limit (0: none), meta key, running-key prefix.
FAIR_POP_SCRIPT = """
local now, lease, window = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local best, best_level, best_since = nil, nil, nil
for i, key in ipairs(KEYS) do
  local b = 5 + (i - 1) * 6
  local queue, rank, aging, limit = ARGV[b], tonumber(ARGV[b + 1]), tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3])
  local meta, running = ARGV[b + 4], ARGV[b + 5]
  if redis.call('SISMEMBER', ARGV[1], queue) == 0 then
    local id, info, pos = nil, nil, 0
    if limit > 0 then
      for j, cand in ipairs(redis.call('LRANGE', key, 0, window - 1)) do
        local m = redis.call('HGET', meta, cand)
        local owner = m and string.match(m, '|(.*)$') or ''
        local room = true
        if owner ~= '' then
          redis.call('ZREMRANGEBYSCORE', running .. owner, '-inf', now)
          room = redis.call('ZCARD', running .. owner) < limit
        end
        if room then id, info, pos = cand, m, j; break end
      end
    else
      id = redis.call('LINDEX', key, 0)
      pos = 1
      if id and aging > 0 then info = redis.call('HGET', meta, id) end
    end
    if id then
      local level, since = rank, now
      if info then since = tonumber(string.match(info, '^([^|]*)')) or now end
      if aging > 0 then level = rank + math.floor((now - since) / aging) end
      if best == nil or level > best_level or (level == best_level and since < best_since) then
        best = {key, id, pos, info, limit, running, meta}
        best_level, best_since = level, since
      end
    end
  end
end
if best == nil then return false end
local key, id, pos, info, limit, running, meta = best[1], best[2], best[3], best[4], best[5], best[6], best[7]
if pos == 1 then redis.call('LPOP', key) else redis.call('LREM', key, 1, id) end
redis.call('HDEL', meta, id)
local owner = info and string.match(info, '|(.*)$') or ''
if limit > 0 and owner ~= '' then redis.call('ZADD', running .. owner, now + lease, id) end
return {key, id}
"""
#: How far down a list a per-owner-limited queue looks for a job whose owner has room.
FAIR_WINDOW = 1000


def pop_fair(script: Any, keys: Sequence[str], *, lease: float) -> tuple[str, str] | None:
    """pop_ready for keys among which some queue is fair; `script` is FAIR_POP_SCRIPT registered on the caller's connection."""
    from jobs.engine import conf

    args: list[Any] = [PAUSED_KEY, f"{time.time():.3f}", lease, FAIR_WINDOW]
    for key in keys:
        queue = conf.get_queue(key_to_queue(key))
        rank = priority.LEVELS.index(int(key.rsplit(".p", 1)[1]))
        args += [queue.name, rank, queue.aging or 0, queue.per_owner_limit or 0, meta_key(queue.name), running_key(queue.name, "")]
    popped = script(keys=keys, args=args)
    if not popped:
        return None
    key, raw_id = popped
    return raw_id.decode(), key_to_queue(key.decode())


def release(queue: str, owner: int | None, job_id: str) -> None:
    """A per-owner-limited job ended here: its owner's slot frees at once (else its lease runs out)."""
    if owner is not None:
        connection().zrem(running_key(queue, owner), job_id)


def renew(leases: Iterable[tuple[str, int, str]], *, lease: float) -> None:
    """Extend the leases of running (queue, owner, job id): a worker's heartbeat, for jobs longer than a lease."""
    until = time.time() + lease
    with connection().pipeline(transaction=False) as pipe:
        for queue, owner, job_id in leases:
            pipe.zadd(running_key(queue, owner), {job_id: until}, xx=True)
        pipe.execute()


def pop_ready(script: Any, keys: Sequence[str]) -> tuple[str, str] | None:
    """Without blocking: (job id, queue) of the next waiting job in `keys` (listen_keys order), or None.

    `script` is POP_READY_SCRIPT registered on the caller's connection (Redis.register_script).
    """
    popped = script(keys=keys, args=[PAUSED_KEY, *(key_to_queue(k) for k in keys)])
    if not popped:
        return None
    key, raw_id = popped
    return raw_id.decode(), key_to_queue(key.decode())


# pop_ready for up to ARGV[2] ids: what that many single pops would take, in their order (the first
# list that is not paused drained first, then the next in the keys' order), in one round trip. It
# takes at most half of what waits in the lists it may pop from (at least one), so one worker does
# not take a short backlog that other workers could share.
POP_MANY_SCRIPT = """
local want = tonumber(ARGV[2])
local open, total = {}, 0
for i, key in ipairs(KEYS) do
  if redis.call('SISMEMBER', ARGV[1], ARGV[i + 2]) == 0 then
    local n = redis.call('LLEN', key)
    if n > 0 then
      open[#open + 1] = key
      total = total + n
    end
  end
end
want = math.min(want, math.max(1, math.floor(total / 2)))
local out = {}
for _, key in ipairs(open) do
  if want <= 0 then break end
  local ids = redis.call('LPOP', key, want)
  if ids then
    for _, id in ipairs(ids) do
      out[#out + 1] = key
      out[#out + 1] = id
    end
    want = want - #ids
  end
end
return out
"""


def pop_many(script: Any, keys: Sequence[str], count: int) -> list[tuple[str, str]]:
    """Without blocking: up to `count` (job id, queue) in the order `count` pop_ready calls would return them.

    `script` is POP_MANY_SCRIPT registered on the caller's connection. Fewer come when fewer wait, and
    never more than half of those waiting (at least one).
    """
    popped = script(keys=keys, args=[PAUSED_KEY, count, *(key_to_queue(k) for k in keys)])
    pairs = list(zip(popped[::2], popped[1::2]))
    return [(raw_id.decode(), key_to_queue(key.decode())) for key, raw_id in pairs]


def holding_key(worker: str) -> str:
    """A process worker's note of the batch it holds (jobs.engine.batch.Holding), read by stalled-job recovery."""
    return f"jobs:holding:{worker}"


class NoteWriter:
    """A worker's holding notes (one before each job of a batch) without a round trip each.

    The SET is on the socket before the job starts, so it reaches Redis even when the process is
    killed right after (the kernel still sends what was written); its answer is read before the next
    note is sent, or by `flush()`. Waiting for each answer cost as much as the rest of a no-op job.
    """

    def __init__(self) -> None:
        self._conn: Any = None
        self._pending = False

    def send(self, worker: str, note: str, *, ttl: float) -> None:
        """Send the note; raise on a failed send or an error answer to the previous one (then reconnect next time)."""
        try:
            if self._conn is None:
                pool = connection().connection_pool
                self._conn = pool.connection_class(**pool.connection_kwargs)
            self.flush()
            self._conn.send_command("SET", holding_key(worker), note, "EX", max(1, int(ttl)))
            self._pending = True
        except Exception:
            self.close()
            raise

    def flush(self) -> None:
        """Read the answer of the note in flight, if any."""
        if self._pending and self._conn is not None:
            self._pending = False
            self._conn.read_response()

    def close(self) -> None:
        conn, self._conn, self._pending = self._conn, None, False
        if conn is not None:
            conn.disconnect()


def forget_holding(worker: str) -> None:
    connection().delete(holding_key(worker))


def holding_notes(workers: Sequence[str]) -> dict[str, str]:
    """The holding notes of these workers (those that have one)."""
    if not workers:
        return {}
    found = connection().mget([holding_key(w) for w in workers])
    return {w: raw.decode() if isinstance(raw, bytes) else raw for w, raw in zip(workers, found) if raw is not None}


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
            pipe.hdel(meta_key(queue), job_id)
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
