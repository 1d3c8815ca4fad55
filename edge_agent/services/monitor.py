"""Health monitor service: camera liveness, active probes and self-checks, run by
an APScheduler ``AsyncIOScheduler`` with one interval job each.

Liveness judges every camera each ``liveness_interval_s``:

- a disabled camera is ``disabled``, and one outside its schedule ``idle``
  (silence is expected then: no outage is raised);
- a camera silent (no frame, no successful probe) for more than one expected
  interval is ``stale``, and for more than ``offline_after_missed`` intervals
  ``offline``;
- an ``offline`` camera comes back ``online`` only after a good frame or a
  successful probe newer than the moment it went offline.

Silence is counted from the latest of the last frame, the last successful
probe and the moment the camera came under watch. A camera comes under watch
when the monitor starts (or when it was registered, if later) and when it
leaves the ``idle`` or ``disabled`` state. So a restart, or the start of a
schedule window, gives every camera its full grace before it can be stale,
instead of flagging every camera that was quiet while the appliance was down.
A camera whose expected interval is 0 is not watched.

Going offline and coming back each write exactly one ``camera.offline`` or
``camera.online`` event, in the transaction that stores the new state in
``camera_health``; which of the two was last written is kept there too, so
that a restart, a night of ``idle`` or a disabled spell in between never
writes a second ``camera.offline`` without a ``camera.online`` between them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, tzinfo
from typing import Any, Protocol

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from edge_agent.clients.probes import ProbeResult
from edge_agent.clients.storage.health import CameraHealth, HealthRepository
from edge_agent.clients.storage.outbox import NewRecord
from edge_agent.clock import Clock, from_text, to_text
from edge_agent.config import MonitorSettings
from edge_agent.imaging.video import display_url
from edge_agent.models import EVENTS_STREAM, Camera, CameraState, EventType
from edge_agent.services.camera_activity import ActivitySnapshot, CameraActivity
from edge_agent.services.cameras import CameraService
from edge_agent.services.self_checks import SelfCheckJob, SelfCheckSources

logger = logging.getLogger(__name__)

_UNWATCHED_STATES = (CameraState.IDLE, CameraState.DISABLED)
# Seconds stop() waits for a job that is writing to finish.
_STOP_WAIT_S = 10.0


class Prober(Protocol):
    async def probe(self, url: str) -> ProbeResult: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class _Watch:
    """What liveness concluded about one camera. ``offline_at`` is set while
    the last event written for it was ``camera.offline``."""

    state: CameraState | None
    since: datetime
    watch_from: datetime
    offline_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class _Judged:
    watch: _Watch
    view: CameraHealth
    event: NewRecord | None


class LivenessJob:
    """Judges every camera's liveness; :meth:`run` is the scheduler's job."""

    def __init__(
        self,
        cameras: CameraService,
        health: HealthRepository,
        activity: CameraActivity,
        settings: MonitorSettings,
        timezone: tzinfo,
        clock: Clock,
        *,
        on_events: Callable[[], None] | None = None,
    ) -> None:
        self._cameras = cameras
        self._health = health
        self._activity = activity
        self._settings = settings
        self._timezone = timezone
        self._clock = clock
        self._on_events = on_events
        self._started_at = clock.now()
        self._watches: dict[str, _Watch] | None = None

    def restart(self) -> None:
        """Count silence from now for cameras not yet judged (the monitor's start)."""
        self._started_at = self._clock.now()

    async def run(self) -> list[NewRecord]:
        """Judge every camera, store every view, return the events written."""
        now = self._clock.now()
        watches = self._watches if self._watches is not None else await self._load()
        judged: dict[str, _Judged] = {}
        for camera in await self._cameras.list_cameras():
            verdict = self._judge(camera, watches.get(camera.id), now)
            if verdict is not None:
                judged[camera.id] = verdict

        events = [j.event for j in judged.values() if j.event is not None]
        await self._health.save_cameras([j.view for j in judged.values()], events)
        self._watches = {camera_id: j.watch for camera_id, j in judged.items()}
        for event in events:
            logger.warning(
                "Camera %s is %s: %s",
                event.payload["camera_id"],
                event.payload["state"],
                event.payload["reason"],
            )
        if events and self._on_events is not None:
            self._on_events()
        return events

    async def _load(self) -> dict[str, _Watch]:
        """The states stored before a restart, so that none is announced twice."""
        watches: dict[str, _Watch] = {}
        for view in await self._health.camera_health():
            self._activity.seed(view.camera_id, view.last_frame_at, view.last_probe_at)
            offline_at = view.activity.get("offline_at")
            watches[view.camera_id] = _Watch(
                state=CameraState(view.state),
                since=view.since,
                watch_from=self._started_at,
                offline_at=None if offline_at is None else from_text(offline_at),
            )
        return watches

    def _judge(
        self, camera: Camera, previous: _Watch | None, now: datetime
    ) -> _Judged | None:
        interval = self._interval(camera)
        if interval <= 0:
            return None
        snapshot = self._activity.snapshot(camera.id, now)
        watch = self._watch_from(camera, previous, now)
        state, reason = self._state(camera, watch, snapshot, interval, now)

        event = None
        last_frame = snapshot.last_frame_at
        if state is CameraState.OFFLINE and watch.offline_at is None:
            kind = EventType.CAMERA_OFFLINE
            event = self._event(kind, camera, watch, state, reason, last_frame)
            watch = replace(watch, offline_at=now)
        elif state is CameraState.ONLINE and watch.offline_at is not None:
            kind = EventType.CAMERA_ONLINE
            event = self._event(kind, camera, watch, state, reason, last_frame)
            watch = replace(watch, offline_at=None)
        if watch.state in _UNWATCHED_STATES and state not in _UNWATCHED_STATES:
            watch = replace(watch, watch_from=now)
        if state is not watch.state:
            watch = replace(watch, state=state, since=now)
        return _Judged(watch, self._view(camera, watch, snapshot, interval, now), event)

    def _interval(self, camera: Camera) -> float:
        if camera.expected_interval_s is None:
            return self._settings.default_expected_interval_s
        return camera.expected_interval_s

    def _watch_from(
        self, camera: Camera, previous: _Watch | None, now: datetime
    ) -> _Watch:
        if previous is None:
            # Never judged (new, just given an interval, or first since the
            # start): watched from the latest of those moments.
            moments = (self._started_at, camera.created_at, camera.updated_at)
            return _Watch(None, now, max(m for m in moments if m is not None))
        return previous

    def _state(
        self,
        camera: Camera,
        watch: _Watch,
        snapshot: ActivitySnapshot,
        interval: float,
        now: datetime,
    ) -> tuple[CameraState, str]:
        if not camera.enabled:
            return CameraState.DISABLED, "the camera is disabled"
        if not camera.active_at(now, self._timezone):
            return CameraState.IDLE, "outside the camera's active schedule"
        good = _latest(snapshot.last_frame_at, snapshot.last_probe_ok_at)
        if watch.offline_at is not None:
            if good is not None and good > watch.offline_at:
                return CameraState.ONLINE, _recovery(snapshot, good)
            return CameraState.OFFLINE, "no good frame or probe since it went offline"

        # Leaving idle or disabled now: watched from now on.
        start = now if watch.state in _UNWATCHED_STATES else watch.watch_from
        reference = start if good is None else max(good, start)
        silence = (now - reference).total_seconds()
        if silence > interval * self._settings.offline_after_missed:
            return CameraState.OFFLINE, _silence(silence, interval)
        if silence > interval:
            return CameraState.STALE, _silence(silence, interval)
        return CameraState.ONLINE, "frames arrive as expected"

    def _event(
        self,
        kind: EventType,
        camera: Camera,
        watch: _Watch,
        state: CameraState,
        reason: str,
        last_frame: datetime | None,
    ) -> NewRecord:
        payload: dict[str, Any] = {
            "camera_id": camera.id,
            "name": camera.name,
            "location": camera.location,
            "state": state.value,
            "previous_state": None if watch.state is None else watch.state.value,
            "last_frame_at": None if last_frame is None else to_text(last_frame),
            "reason": reason,
        }
        return NewRecord(EVENTS_STREAM, kind.value, self._clock.now(), payload)

    def _view(
        self,
        camera: Camera,
        watch: _Watch,
        snapshot: ActivitySnapshot,
        interval: float,
        now: datetime,
    ) -> CameraHealth:
        offline_at = watch.offline_at
        return CameraHealth(
            camera_id=camera.id,
            state=str(watch.state),
            since=watch.since,
            updated_at=now,
            last_frame_at=snapshot.last_frame_at,
            last_probe_at=snapshot.last_probe_ok_at,
            last_error=snapshot.last_error,
            activity={
                **snapshot.as_json(),
                "expected_interval_s": interval,
                "offline_at": None if offline_at is None else to_text(offline_at),
            },
        )


class ProbeJob:
    """Probes every enabled camera that has a probe URL, all at once; the
    prober bounds how many run concurrently."""

    def __init__(
        self,
        cameras: CameraService,
        prober: Prober,
        activity: CameraActivity,
        clock: Clock,
    ) -> None:
        self._cameras = cameras
        self._prober = prober
        self._activity = activity
        self._clock = clock

    async def run(self) -> dict[str, ProbeResult]:
        """Probe, record each result in the activity, return them by camera id."""
        targets = [
            camera
            for camera in await self._cameras.list_cameras()
            if camera.enabled and camera.probe_url
        ]
        results = await asyncio.gather(*(self._probe(c) for c in targets))
        return {
            camera.id: result for camera, result in zip(targets, results, strict=True)
        }

    async def _probe(self, camera: Camera) -> ProbeResult:
        url = camera.probe_url or ""
        result = await self._prober.probe(url)
        at = self._clock.now()
        if result.ok:
            self._activity.probe_succeeded(camera.id, at)
        else:
            self._activity.probe_failed(camera.id, f"probe: {result.detail}", at)
            logger.info(
                "Probe of camera %s at %s failed: %s",
                camera.id,
                display_url(url),
                result.detail,
            )
        return result


class HealthMonitor:
    """Runs the three jobs on a schedule between :meth:`start` and :meth:`stop`.

    Each run is a task of its own, shielded from the scheduler: shutting the
    scheduler down cancels what it runs, and a run cut short in the middle of
    a write would leave nothing to retry. :meth:`stop` waits for them instead.
    """

    def __init__(
        self,
        liveness: LivenessJob,
        probes: ProbeJob,
        self_checks: SelfCheckJob,
        settings: MonitorSettings,
        prober: Prober | None = None,
    ) -> None:
        self.liveness = liveness
        self.probes = probes
        self.self_checks = self_checks
        self._settings = settings
        self._prober = prober
        self._scheduler: Any = None
        self._runs: set[asyncio.Task[Any]] = set()

    @property
    def running(self) -> bool:
        return self._scheduler is not None

    async def start(self) -> None:
        """Schedule the three jobs; silence is counted from now."""
        if self._scheduler is not None:
            return
        self.liveness.restart()
        scheduler = AsyncIOScheduler(timezone=UTC)
        jobs: dict[str, tuple[Callable[[], Awaitable[object]], float]] = {
            "liveness": (self.liveness.run, self._settings.liveness_interval_s),
            "probes": (self.probes.run, self._settings.probe_interval_s),
            "self-checks": (self.self_checks.run, self._settings.self_check_interval_s),
        }
        for name, (job, seconds) in jobs.items():
            scheduler.add_job(
                self._runner(name, job),
                "interval",
                seconds=seconds,
                id=name,
                max_instances=1,
                coalesce=True,
            )
        scheduler.start()
        self._scheduler = scheduler
        logger.info("Health monitor started")

    async def stop(self) -> None:
        """Stop the schedule, wait for runs in flight, close the prober."""
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            scheduler.shutdown(wait=False)
        if self._runs:
            await asyncio.wait(list(self._runs), timeout=_STOP_WAIT_S)
        if self._prober is not None:
            await self._prober.close()
        logger.info("Health monitor stopped")

    def _runner(
        self, name: str, job: Callable[[], Awaitable[object]]
    ) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            task = asyncio.create_task(_logged(name, job), name=f"monitor-{name}")
            self._runs.add(task)
            task.add_done_callback(self._runs.discard)
            await asyncio.shield(task)

        return run


async def _logged(name: str, job: Callable[[], Awaitable[object]]) -> None:
    try:
        await job()
    except Exception:
        logger.exception("Health monitor job %s failed", name)


def _latest(first: datetime | None, second: datetime | None) -> datetime | None:
    if first is None or second is None:
        return first or second
    return max(first, second)


def _silence(silence_s: float, interval_s: float) -> str:
    return f"nothing for {silence_s:.0f} s; a frame is expected every {interval_s:g} s"


def _recovery(snapshot: ActivitySnapshot, good: datetime) -> str:
    if snapshot.last_frame_at == good:
        return "a frame arrived"
    return "a probe succeeded"


def build_health_monitor(
    settings: MonitorSettings,
    timezone: tzinfo,
    cameras: CameraService,
    health: HealthRepository,
    activity: CameraActivity,
    prober: Prober,
    sources: SelfCheckSources,
    clock: Clock,
    *,
    on_events: Callable[[], None] | None = None,
) -> HealthMonitor:
    """The monitor with its three jobs, for the composition root."""
    return HealthMonitor(
        LivenessJob(
            cameras, health, activity, settings, timezone, clock, on_events=on_events
        ),
        ProbeJob(cameras, prober, activity, clock),
        SelfCheckJob(health, sources, settings, clock, on_events=on_events),
        settings,
        prober,
    )
