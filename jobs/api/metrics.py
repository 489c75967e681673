"""Prometheus exposition: a custom collector reading the engine's folded stats on each scrape.

The collector reads jobs.engine.stats.counts() (folded events, no COUNT over the jobs table), the durable
pause switches, open dead letters and live worker heartbeats. A fresh registry per scrape keeps the
values current without a background thread, and keeps the process-wide default registry untouched.
"""
from __future__ import annotations

from typing import Any, Iterator, Mapping

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from rest_framework import authentication
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from jobs import history, selectors
from jobs.api.auth import ApiKeyAuthentication
from jobs.api.errors import errors
from jobs.api.serializers import ErrorOutputSerializer
from jobs.api.permissions import IsStaffOrMetricsToken, MetricsTokenAuthentication
from jobs.engine import rollups, stats
from jobs.models import QueueLatency


class EngineCollector(Collector):
    """Gauges for jobs per queue and status, paused queues, open dead letters, live workers and the oldest waiting
    job per queue; histograms of wait and run times per queue."""

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

        oldest = GaugeMetricFamily("jobconsole_queue_oldest_waiting_seconds", "How long the oldest waiting job of each queue has waited.", labels=["queue"])
        ages = history.oldest_waiting()
        for name in queue_stats:
            oldest.add_metric([name], ages.get(name, 0.0))
        yield oldest
        yield from latency_histograms()


def latency_histograms() -> Iterator[Metric]:
    """Wait (start minus becoming waiting) and run (end minus start) times per queue, since the first job (QueueLatency)."""
    helps = {
        "wait": "Seconds jobs waited from becoming waiting to starting, per queue.",
        "run": "Seconds jobs ran, from start to completion, failure, retry or cancel, per queue.",
    }
    families = {kind: HistogramMetricFamily(f"jobconsole_queue_{kind}_seconds", text, labels=["queue"]) for kind, text in helps.items()}
    for row in QueueLatency.objects.order_by("queue", "kind"):
        if row.kind in families:
            families[row.kind].add_metric([row.queue], rollups.prometheus_buckets(row.buckets), sum_value=row.total)
    yield from families.values()


def render() -> bytes:
    """The current metrics in Prometheus text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(EngineCollector())
    return generate_latest(registry)


class PrometheusRenderer(BaseRenderer):
    """Lets `Accept: text/plain` (what scrapers send) pass content negotiation; errors still render as JSON."""

    media_type = "text/plain"
    format = "txt"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Mapping[str, Any] | None = None) -> bytes:
        if isinstance(data, bytes):
            return data
        return JSONRenderer().render(data)


NO_RENDERER = OpenApiResponse(ErrorOutputSerializer, description="`?format=` names neither json nor txt.")


class MetricsApi(APIView):
    """Prometheus text format: jobs per queue and status, paused queues, dead letters, live workers. Staff, or `Bearer <METRICS_TOKEN>`."""

    authentication_classes = [MetricsTokenAuthentication, ApiKeyAuthentication, authentication.SessionAuthentication]
    permission_classes = [IsStaffOrMetricsToken]
    renderer_classes = [JSONRenderer, PrometheusRenderer]

    @extend_schema(tags=["metrics"], summary="Prometheus metrics", operation_id="metrics", responses={(200, "text/plain"): OpenApiTypes.STR, **errors(403), 404: NO_RENDERER})
    def get(self, request: Request) -> HttpResponse:
        return HttpResponse(render(), content_type="text/plain; version=0.0.4; charset=utf-8")
