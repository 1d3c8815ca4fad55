"""Observability: Prometheus metrics of the HTTP API and the frame pipeline.

A registry per application (not the process-wide default) keeps two apps in
one process, as in tests, from counting into each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.requests = Counter(
            "edge_http_requests_total",
            "HTTP requests answered, by route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "edge_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template.",
            ["method", "route"],
            registry=self.registry,
        )
        self.frames_refused = Counter(
            "edge_frames_refused_total",
            "Frames refused or set aside, by reason (problem type or gate).",
            ["reason"],
            registry=self.registry,
        )
        self.frames_decided = Counter(
            "edge_frame_decisions_total",
            "Decisions taken on frames, by outcome.",
            ["outcome"],
            registry=self.registry,
        )
        self.spool_frames = Gauge(
            "edge_spool_frames",
            "Frames accepted, not yet decided.",
            registry=self.registry,
        )
        self.spool_bytes = Gauge(
            "edge_spool_bytes",
            "Bytes of the frames in the spool.",
            registry=self.registry,
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
