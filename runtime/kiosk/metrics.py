"""The kiosk's metrics for Prometheus (`GET /metrics`, the text exposition format of the official prometheus-client):
queries by outcome, their time by stage, the query pool's depth, the bundle served and its reloads, feedback by
outcome.

Why a registry per kiosk, not the client's global one: a process may run several kiosks (the tests do), and each
must count only its own requests. The pool and bundle figures are read when scraped, so they are never stale.
"""
from __future__ import annotations

from typing import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from .live import LiveBundle
from .pool import QueryPool

#: Query outcomes: a product found, the nearest items of a photo of no product, or an error answer (4xx/5xx).
OUTCOMES = ("found", "not_found", "error")
#: Seconds: a query's stages run from a few milliseconds (decode) to seconds (a busy pool).
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class KioskMetrics:
    """Counters the kiosk updates as it answers, and the figures read from the pool and bundle on each scrape.
    Thread-safe (prometheus-client's metrics are)."""

    def __init__(self, live: LiveBundle, pool: QueryPool) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.queries = Counter("shadematch_queries", "Photos answered by POST /api/query, by outcome", ["outcome"],
                               registry=self.registry)
        self.seconds = Histogram("shadematch_query_seconds", "Time of a query by stage: decode (the photo), answer "
                                 "(model, reading and search), total (the whole request)", ["stage"],
                                 buckets=BUCKETS, registry=self.registry)
        self.feedback = Counter("shadematch_feedback", "POST /api/feedback by outcome (stored, or the error code)",
                                ["outcome"], registry=self.registry)
        for outcome in OUTCOMES:
            self.queries.labels(outcome)  # every outcome is exported from the start, at 0
        self.registry.register(_Served(live, pool))

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _Served(Collector):
    """The bundle served, its reloads and the pool's depth, read at scrape time."""

    def __init__(self, live: LiveBundle, pool: QueryPool) -> None:
        self.live, self.pool = live, pool

    def collect(self) -> Iterator[Metric]:
        bundle = self.live.current.describe()
        info = InfoMetricFamily("shadematch_bundle", "The bundle the kiosk serves", labels=("id", "name"))
        info.add_metric((bundle["id"], bundle["name"]), {"items": str(bundle["items"])})
        yield info
        yield GaugeMetricFamily("shadematch_bundle_reloads", "Bundles swapped in since the kiosk started (SIGHUP)",
                                value=self.live.reloads)
        yield GaugeMetricFamily("shadematch_queries_in_flight", "Queries running or waiting for a worker",
                                value=self.pool.in_flight)
        yield GaugeMetricFamily("shadematch_query_capacity", "Queries that may run or wait before 503 (workers + queue)",
                                value=self.pool.capacity)
