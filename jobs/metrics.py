"""Prometheus exposition: a custom collector reading the engine's folded stats on each scrape.

The collector reads jobs.stats.counts() (folded events, no COUNT over the jobs table), the durable
pause switches, open dead letters and live worker heartbeats. A fresh registry per scrape keeps the
values current without a background thread, and keeps the process-wide default registry untouched.
"""
from __future__ import annotations

from typing import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from jobs import selectors, stats


class EngineCollector(Collector):
    """Gauges for jobs per queue and status, paused queues, open dead letters and live workers."""

    def collect(self) -> Iterator[Metric]:
        """Yield the engine's gauges as of now."""
        counts = stats.counts()
        queue_stats = selectors.queue_stats_all(counts)

        jobs = GaugeMetricFamily("jobconsole_queue_jobs", "Jobs per queue and status (paused: waiting in a paused queue).", labels=["queue", "status"])
        for name, row in queue_stats.items():
            for status in selectors.STAT_KEYS:
                jobs.add_metric([name, status], row[status])
        for name, raw in counts.items():
            if name not in queue_stats:  # jobs left in a queue no longer declared
                for status in selectors.STAT_KEYS:
                    jobs.add_metric([name, status], max(raw.get(status, 0), 0))
        yield jobs

        paused = GaugeMetricFamily("jobconsole_queue_paused", "1 when the queue is paused.", labels=["queue"])
        for name, row in queue_stats.items():
            paused.add_metric([name], 1 if row["isPaused"] else 0)
        yield paused

        dead = GaugeMetricFamily("jobconsole_dead_letters", "Open dead letters per queue.", labels=["queue"])
        for name, n in selectors.dead_letter_stats()["byQueue"].items():
            dead.add_metric([name], n)
        yield dead

        workers = selectors.alive_workers()
        alive = GaugeMetricFamily("jobconsole_workers_alive", "Workers with a recent heartbeat.")
        alive.add_metric([], len(workers))
        yield alive
        done = GaugeMetricFamily("jobconsole_worker_jobs_done", "Jobs finished by each live worker since it started.", labels=["worker"])
        for w in workers:
            done.add_metric([w.name], w.jobs_done)
        yield done


def render() -> bytes:
    """The current metrics in Prometheus text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(EngineCollector())
    return generate_latest(registry)
