"""Prometheus metrics shared by every process; multi-process aware under gunicorn."""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

HTTP_REQUESTS = Counter(
    "linli_http_requests_total", "HTTP requests handled", ["service", "method", "endpoint", "status"]
)
HTTP_LATENCY = Histogram(
    "linli_http_request_seconds",
    "HTTP request latency",
    ["service", "method", "endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
EVENTS_PUBLISHED = Counter("linli_events_published_total", "Outbox rows confirmed by the broker", ["service"])
EVENTS_HANDLED = Counter("linli_events_handled_total", "Events taken off the queue", ["service", "outcome"])


def render() -> tuple[bytes, str]:
    """The metrics text; gathers every gunicorn worker's values when PROMETHEUS_MULTIPROC_DIR is set."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
