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
        self.events_delivered = Counter(
            "edge_events_delivered_total",
            "Events a sink took, re-driven ones included, by sink.",
            ["sink"],
            registry=self.registry,
        )
        self.events_failed = Counter(
            "edge_event_delivery_failures_total",
            "Failed attempts to deliver an event, by sink.",
            ["sink"],
            registry=self.registry,
        )
        self.events_dead_lettered = Counter(
            "edge_events_dead_lettered_total",
            "Events a sink gave up on, by sink.",
            ["sink"],
            registry=self.registry,
        )
        self._add_pipeline_metrics()
        self._add_fleet_metrics()

    def _add_pipeline_metrics(self) -> None:
        """Per stage of a frame's life, the recognizer, and the marks made."""
        self.stage_latency = Histogram(
            "edge_pipeline_stage_duration_seconds",
            "Time a frame spends in each stage: inspect, spool, decode, "
            "recognize, decide (judging) and commit (the decision transaction).",
            ["stage"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )
        self.recognizer_calls = Counter(
            "edge_recognizer_calls_total",
            "Recognition calls for frames, by outcome: ok, failed (after "
            "retries), refused (the frame itself), circuit_open.",
            ["outcome"],
            registry=self.registry,
        )
        self.recognizer_breaker = Gauge(
            "edge_recognizer_breaker_state",
            "1 for the recognizer circuit breaker's current state, else 0.",
            ["state"],
            registry=self.registry,
        )
        self.marks = Counter(
            "edge_attendance_marks_total",
            "Attendance marks made from frames, by kind.",
            ["kind"],
            registry=self.registry,
        )

    def _add_fleet_metrics(self) -> None:
        """State read at scrape time: cameras, outbox consumers, sync streams."""
        self.cameras = Gauge(
            "edge_cameras",
            "Cameras by the health monitor's state.",
            ["state"],
            registry=self.registry,
        )
        self.outbox_lag = Gauge(
            "edge_outbox_lag_records",
            "Records a consumer (event sink or sync stream) has yet to deliver.",
            ["consumer"],
            registry=self.registry,
        )
        self.outbox_dead_letters = Gauge(
            "edge_outbox_dead_letters",
            "Records a consumer gave up on, waiting to be re-driven.",
            ["consumer"],
            registry=self.registry,
        )
        self.sync_lag_seconds = Gauge(
            "edge_sync_lag_seconds",
            "Age of the oldest record of a stream not yet acknowledged by the "
            "central server (0 when all are).",
            ["stream"],
            registry=self.registry,
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
