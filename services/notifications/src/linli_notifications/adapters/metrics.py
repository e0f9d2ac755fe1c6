"""Prometheus metrics of the delivery stage (served by the worker's /metrics)."""

from prometheus_client import Counter, Histogram

ATTEMPTS = Counter(
    "linli_notification_attempts_total", "Provider attempts by outcome", ["channel", "provider", "outcome"]
)
PROVIDER_LATENCY = Histogram(
    "linli_notification_provider_seconds",
    "Provider call latency",
    ["provider"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
FINISHED = Counter("linli_notification_deliveries_total", "Deliveries leaving the loop, by state", ["channel", "state"])
# A batch's plan whose expansion kept failing (service_layer/deferred.py): set aside, as a bad event
# is dead-lettered, and left in event_plans (failed_at, error) for an operator.
PLANS_SET_ASIDE = Counter("linli_notification_plans_set_aside_total", "Event plans set aside after failed expansions")
