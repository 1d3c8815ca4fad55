"""Gauge service: cameras by state, outbox and sync lag, breaker, at scrape time.

These values live in the database or in other services, not in the code
paths that change them, so ``/metrics`` asks for them when Prometheus scrapes
rather than every writer keeping a gauge up to date.
"""

from __future__ import annotations

from collections import Counter
from typing import get_args

from edge_agent.clients.recognition.resilient import BreakerState, ResilientRecognizer
from edge_agent.models import CameraState
from edge_agent.observability.metrics import Metrics
from edge_agent.services.cameras import CameraService
from edge_agent.services.events import EventService
from edge_agent.services.sync import SyncService, consumer_name

_NOT_JUDGED = "unknown"


class GaugeService:
    """Sets the gauges that other services' state answers."""

    def __init__(
        self,
        cameras: CameraService,
        events: EventService,
        sync: SyncService,
        recognizer: ResilientRecognizer,
    ) -> None:
        self._cameras = cameras
        self._events = events
        self._sync = sync
        self._recognizer = recognizer

    async def refresh(self, metrics: Metrics) -> None:
        """Set every gauge of ``metrics`` from the state as of now."""
        await self._camera_states(metrics)
        await self._consumers(metrics)
        self._breaker(metrics)

    async def _camera_states(self, metrics: Metrics) -> None:
        counts = Counter(
            status.health.state if status.health else _NOT_JUDGED
            for status in await self._cameras.statuses()
        )
        # Every state is set, to 0 when no camera is in it, so a camera that
        # leaves a state takes its count with it.
        for state in [*CameraState, _NOT_JUDGED]:
            metrics.cameras.labels(str(state)).set(counts.get(str(state), 0))

    async def _consumers(self, metrics: Metrics) -> None:
        for sink in await self._events.sinks():
            metrics.outbox_lag.labels(sink.consumer).set(sink.lag)
            metrics.outbox_dead_letters.labels(sink.consumer).set(sink.dead_letters)
        for stream in await self._sync.status():
            consumer = consumer_name(stream.stream)
            metrics.outbox_lag.labels(consumer).set(stream.lag_records)
            metrics.outbox_dead_letters.labels(consumer).set(stream.dead_letters)
            metrics.sync_lag_seconds.labels(stream.stream).set(stream.lag_s or 0.0)

    def _breaker(self, metrics: Metrics) -> None:
        current = self._recognizer.state
        for state in get_args(BreakerState):
            metrics.recognizer_breaker.labels(state).set(1 if state == current else 0)
