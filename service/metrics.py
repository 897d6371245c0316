"""Prometheus metrics of one app, in their own registry (so several apps can live in one process).

>>> from service.metrics import Metrics
>>> metrics = Metrics()
>>> metrics.images.labels("tiny", "1").inc(32)
>>> b"microgan_images_generated_total" in metrics.render()
True
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "microgan_requests", "HTTP requests by route, method and status", ["route", "method", "status"], registry=r
        )
        self.latency = Histogram(
            "microgan_request_duration_seconds",
            "HTTP request latency to the last byte",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.images = Counter("microgan_images_generated", "Images generated", ["model", "version"], registry=r)
        self.batch_size = Histogram(
            "microgan_batch_size",
            "Requested images per forward pass (before padding)",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.forward = Histogram(
            "microgan_forward_seconds", "Duration of one forward pass", buckets=LATENCY_BUCKETS, registry=r
        )
        self.queue_depth = Gauge("microgan_queue_depth", "Images accepted and not yet in a forward pass", registry=r)
        self.rejected = Counter("microgan_rejected", "Requests refused with 503 because the queue was full", registry=r)
        self.loaded = Gauge(
            "microgan_model_loaded", "1 for each loaded model version", ["model", "version", "precision"], registry=r
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Counts every HTTP request by route template (not raw path, to bound label cardinality)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            self.metrics.requests.labels(path, scope["method"], str(status)).inc()
            self.metrics.latency.labels(path).observe(time.perf_counter() - started)
