"""Prometheus metrics of one server instance (its own registry, so several apps can live in one process)."""

from __future__ import annotations

#: Powers of two up to a large request: texts per model call and requests merged into one call.
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The counters, gauges and histograms served at ``GET /metrics``.

    Attributes:
        requests: HTTP requests by endpoint (route template) and status code.
        latency: request duration by endpoint, seconds.
        in_flight: requests being handled now.
        batch_texts: texts per model call (micro-batch size).
        batch_requests: requests merged into one model call.
        model_seconds: duration of one model call.
        queue_depth: requests waiting for the model.
        texts: texts judged, by outcome (``flagged``, ``passed``, ``failed_closed``).
        model_errors: model calls that raised (a failed batch is retried request by request).
    """

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("crestguard_requests", "HTTP requests by endpoint and status code.",
                                ["endpoint", "status"], registry=r)
        self.latency = Histogram("crestguard_request_duration_seconds", "HTTP request duration by endpoint.",
                                 ["endpoint"], buckets=LATENCY_BUCKETS, registry=r)
        self.in_flight = Gauge("crestguard_requests_in_flight", "HTTP requests being handled.", registry=r)
        self.batch_texts = Histogram("crestguard_batch_texts", "Texts per model call (micro-batch size).",
                                     buckets=SIZE_BUCKETS, registry=r)
        self.batch_requests = Histogram("crestguard_batch_requests", "Requests merged into one model call.",
                                        buckets=SIZE_BUCKETS, registry=r)
        self.model_seconds = Histogram("crestguard_model_duration_seconds", "Duration of one model call.",
                                       buckets=LATENCY_BUCKETS, registry=r)
        self.queue_depth = Gauge("crestguard_queue_depth", "Requests waiting for the model.", registry=r)
        self.texts = Counter("crestguard_texts", "Texts judged, by outcome.", ["outcome"], registry=r)
        self.model_errors = Counter("crestguard_model_errors", "Model calls that raised.", registry=r)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST
