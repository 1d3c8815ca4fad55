"""Health monitor: liveness with hysteresis and schedules, probes bringing a
camera back, self-checks raising and clearing once, the scheduler's life."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from edge_agent.clients.probes import ProbeResult
from edge_agent.clients.storage.audit import AuditRepository
from edge_agent.clients.storage.cameras import CameraRepository
from edge_agent.clients.storage.database import Database
from edge_agent.clients.storage.health import HealthRepository
from edge_agent.clients.storage.outbox import OutboxRecord, OutboxRepository
from edge_agent.clients.storage.security import CameraKeyRepository
from edge_agent.config import MonitorSettings, SpoolSettings
from edge_agent.models import EVENTS_STREAM, CameraState, Direction, local_admin
from edge_agent.services.audit import AuditService
from edge_agent.services.camera_activity import CameraActivity
from edge_agent.services.cameras import CameraPatch, CameraService, parse_schedule
from edge_agent.services.monitor import HealthMonitor, LivenessJob, ProbeJob
from edge_agent.services.pipeline import Backlog
from edge_agent.services.self_checks import DiskUsage, SelfCheckJob, SelfCheckSources
from tests.support import ManualClock

ADMIN = local_admin("test")
START = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)  # a Monday
SETTINGS = MonitorSettings(
    liveness_interval_s=5, offline_after_missed=3, raise_after=2, clear_after=2
)


@dataclass
class Rig:
    db: Database
    clock: ManualClock
    cameras: CameraService
    health: HealthRepository
    activity: CameraActivity
    wakes: list[int] = field(default_factory=list)

    def liveness(self, timezone: tzinfo = UTC) -> LivenessJob:
        return LivenessJob(
            self.cameras,
            self.health,
            self.activity,
            SETTINGS,
            timezone,
            self.clock,
            on_events=lambda: self.wakes.append(1),
        )

    async def events(self) -> list[OutboxRecord]:
        return await OutboxRepository(self.db).after(EVENTS_STREAM, 0, 1000)

    async def add(self, camera_id: str = "door", **fields: object) -> None:
        patch = CameraPatch(**fields)  # type: ignore[arg-type]
        await self.cameras.register(camera_id, None, Direction.ENTRY, ADMIN, patch)


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    """Camera registry, health tables and activity on a real SQLite file."""
    db = Database(tmp_path / "edge.sqlite3")
    await db.open()
    clock = ManualClock(START)
    cameras = CameraService(
        CameraRepository(db),
        CameraKeyRepository(db),
        AuditService(AuditRepository(db), clock),
        clock,
        rotation_grace_s=60,
    )
    yield Rig(db, clock, cameras, HealthRepository(db), CameraActivity(clock))
    await db.close()


async def _tick(rig: Rig, job: LivenessJob, seconds: float) -> list[str]:
    rig.clock.advance(seconds)
    return [e.type for e in await job.run()]


async def _state(rig: Rig, camera_id: str = "door") -> str:
    views = {v.camera_id: v for v in await rig.health.camera_health()}
    return views[camera_id].state


async def test_silence_goes_stale_then_offline_once_and_a_frame_brings_it_back(
    rig: Rig,
) -> None:
    await rig.add(expected_interval_s=10.0)
    job = rig.liveness()

    assert await _tick(rig, job, 5) == []
    assert await _state(rig) == "online"
    assert await _tick(rig, job, 10) == []
    assert await _state(rig) == "stale"
    assert await _tick(rig, job, 20) == ["camera.offline"]
    assert await _tick(rig, job, 5) == []
    assert await _tick(rig, job, 60) == []

    rig.activity.frame_accepted("door", rig.clock.now())
    assert await _tick(rig, job, 1) == ["camera.online"]
    assert await _tick(rig, job, 1) == []

    events = await rig.events()
    assert [e.type for e in events] == ["camera.offline", "camera.online"]
    offline = events[0].payload
    assert offline["camera_id"] == "door"
    assert offline["state"] == "offline"
    assert offline["previous_state"] == "stale"
    assert set(offline) == {
        "camera_id",
        "name",
        "location",
        "state",
        "previous_state",
        "last_frame_at",
        "reason",
    }
    assert events[1].payload["previous_state"] == "offline"
    assert len(rig.wakes) == 2


async def test_an_offline_camera_needs_a_frame_newer_than_its_outage(rig: Rig) -> None:
    await rig.add(expected_interval_s=10.0)
    job = rig.liveness()
    rig.activity.frame_accepted("door", rig.clock.now())
    assert await _tick(rig, job, 40) == ["camera.offline"]

    # A frame stamped before the outage (a slow request finishing) does not
    # bring the camera back.
    rig.activity.frame_accepted("door", rig.clock.now() - timedelta(seconds=30))
    assert await _tick(rig, job, 1) == []
    assert await _state(rig) == "offline"


async def test_a_flapping_camera_writes_one_event_per_real_change(rig: Rig) -> None:
    await rig.add(expected_interval_s=10.0)
    job = rig.liveness()
    for _ in range(3):
        rig.activity.frame_accepted("door", rig.clock.now())
        for _ in range(20):
            await _tick(rig, job, 5)
    types = [e.type for e in await rig.events()]
    assert types == ["camera.offline", "camera.online"] * 2 + ["camera.offline"]


async def test_silence_outside_the_schedule_is_idle_and_raises_nothing(
    rig: Rig,
) -> None:
    window = {"days": [0, 1, 2, 3, 4], "start": "08:00", "end": "18:00"}
    await rig.add(expected_interval_s=10.0, schedule=parse_schedule([window]))
    job = rig.liveness()
    rig.clock.moment = datetime(2024, 3, 4, 18, 30, tzinfo=UTC)

    for _ in range(10):
        assert await _tick(rig, job, 600) == []
    assert await _state(rig) == "idle"

    # Next morning the camera gets its grace from the window's start.
    rig.clock.moment = datetime(2024, 3, 5, 8, 0, 1, tzinfo=UTC)
    assert await _tick(rig, job, 0) == []
    assert await _state(rig) == "online"
    assert await _tick(rig, job, 35) == ["camera.offline"]


async def test_a_window_crossing_midnight_covers_the_next_morning(rig: Rig) -> None:
    # Friday 22:00 to 06:00, site time in Berlin (UTC+1 in March).
    window = {"days": [4], "start": "22:00", "end": "06:00"}
    await rig.add(expected_interval_s=10.0, schedule=parse_schedule([window]))
    rig.clock.moment = datetime(2024, 3, 9, 4, 0, tzinfo=UTC)  # Sat 05:00 local
    job = rig.liveness(ZoneInfo("Europe/Berlin"))
    await _tick(rig, job, 0)
    assert await _tick(rig, job, 40) == ["camera.offline"]

    rig.clock.moment = datetime(2024, 3, 9, 6, 0, tzinfo=UTC)  # Sat 07:00 local
    assert await _tick(rig, job, 0) == []
    assert await _state(rig) == "idle"


async def test_a_restart_gives_every_camera_its_grace_and_keeps_outages(
    rig: Rig,
) -> None:
    await rig.add("quiet", expected_interval_s=10.0)
    await rig.add("dead", expected_interval_s=10.0)
    first = rig.liveness()
    rig.activity.frame_accepted("quiet", rig.clock.now())
    assert await _tick(rig, first, 40) == ["camera.offline", "camera.offline"]
    rig.clock.advance(1)
    rig.activity.frame_accepted("quiet", rig.clock.now())
    assert await _tick(rig, first, 1) == ["camera.online"]

    # The appliance is down for an hour; a new process starts from the table.
    rig.clock.advance(3600)
    rig.activity = CameraActivity(rig.clock)
    second = rig.liveness()
    assert await _tick(rig, second, 1) == []
    assert await _state(rig, "quiet") == "online"
    assert await _state(rig, "dead") == "offline"
    assert await _tick(rig, second, 40) == ["camera.offline"]
    assert len(await rig.events()) == 4


async def test_a_fresh_camera_counts_from_its_registration(rig: Rig) -> None:
    job = rig.liveness()
    rig.clock.advance(3600)
    await rig.add(expected_interval_s=10.0)
    assert await _tick(rig, job, 5) == []
    assert await _state(rig) == "online"


async def test_disabled_and_unwatched_cameras_are_not_judged(rig: Rig) -> None:
    await rig.add("off", expected_interval_s=10.0)
    await rig.add("free", expected_interval_s=0.0)
    await rig.cameras.disable("off", ADMIN)
    job = rig.liveness()
    assert await _tick(rig, job, 600) == []
    views = {v.camera_id: v.state for v in await rig.health.camera_health()}
    assert views == {"off": CameraState.DISABLED.value}


class ScriptedProber:
    """Answers probes with a fixed result, counting them."""

    def __init__(self, ok: bool) -> None:
        self.ok = ok
        self.urls: list[str] = []

    async def probe(self, url: str) -> ProbeResult:
        self.urls.append(url)
        return ProbeResult(self.ok, "ok" if self.ok else "refused", 0.01)

    async def close(self) -> None:
        return None


async def test_a_successful_probe_brings_an_offline_camera_back(rig: Rig) -> None:
    await rig.add(expected_interval_s=10.0, probe_url="http://cam.local/snap.jpg")
    await rig.add("plain", expected_interval_s=0.0)
    job = rig.liveness()
    assert await _tick(rig, job, 40) == ["camera.offline"]

    prober = ScriptedProber(ok=False)
    probes = ProbeJob(rig.cameras, prober, rig.activity, rig.clock)
    await probes.run()
    assert await _tick(rig, job, 1) == []
    assert (await rig.health.camera_health())[0].last_error == "probe: refused"

    prober.ok = True
    results = await probes.run()
    assert list(results) == ["door"]
    assert prober.urls == ["http://cam.local/snap.jpg"] * 2
    assert await _tick(rig, job, 1) == ["camera.online"]
    assert (await rig.events())[-1].payload["reason"] == "a probe succeeded"


# --- self-checks ---------------------------------------------------------------


@dataclass
class Breaker:
    state: str = "closed"


@dataclass
class Disk:
    free_percent: float = 50.0

    def __call__(self, path: Path) -> DiskUsage:
        free = int(self.free_percent * 10)
        return DiskUsage(1000, 1000 - free, free)


@dataclass
class Monotonic:
    value: float = 1000.0

    def __call__(self) -> float:
        return self.value


def _self_checks(
    rig: Rig, tmp_path: Path, **sources: object
) -> tuple[SelfCheckJob, Monotonic]:
    base: dict[str, object] = {
        "data_dir": tmp_path,
        "spool": SpoolSettings(max_frames=100, max_bytes=10 * 1024 * 1024),
        "backlog": Backlog(),
        "recognizer": Breaker(),
        "disk_usage": Disk(),
    }
    monotonic = Monotonic()
    job = SelfCheckJob(
        rig.health,
        SelfCheckSources(**{**base, **sources}),  # type: ignore[arg-type]
        SETTINGS,
        rig.clock,
        monotonic=monotonic,
        on_events=lambda: rig.wakes.append(1),
    )
    return job, monotonic


async def _check_run(rig: Rig, job: SelfCheckJob, seconds: float = 30) -> list[str]:
    rig.clock.advance(seconds)
    return [f"{e.type}:{e.payload['check']}" for e in await job.run()]


async def test_a_breaker_open_raises_once_and_clears_once(
    rig: Rig, tmp_path: Path
) -> None:
    breaker = Breaker()
    job, monotonic = _self_checks(rig, tmp_path, recognizer=breaker)

    def step() -> None:
        monotonic.value += 30

    assert await _check_run(rig, job) == []
    breaker.state = "open"
    step()
    assert await _check_run(rig, job) == []
    step()
    assert await _check_run(rig, job) == ["system.anomaly:recognizer"]
    for _ in range(3):
        step()
        assert await _check_run(rig, job) == []
    breaker.state = "closed"
    step()
    assert await _check_run(rig, job) == []
    step()
    assert await _check_run(rig, job) == ["system.recovered:recognizer"]

    events = await rig.events()
    assert events[0].payload == {
        "check": "recognizer",
        "detail": "the recognizer circuit breaker is open",
        "value": None,
        "threshold": None,
    }
    rows = {r.name: r.state for r in await rig.health.self_checks()}
    assert rows["recognizer"] == "ok"
    assert "sync" not in rows  # no sync configured: skipped


async def test_a_hovering_value_does_not_flap(rig: Rig, tmp_path: Path) -> None:
    disk = Disk(free_percent=3.0)
    job, monotonic = _self_checks(rig, tmp_path, disk_usage=disk)
    seen: list[str] = []
    for free in (3, 3, 9, 3, 9, 3, 9, 9, 9):
        disk.free_percent = free
        monotonic.value += 30
        seen += await _check_run(rig, job)
    assert seen == ["system.anomaly:disk", "system.recovered:disk"]


async def test_spool_backlog_and_sync_lag_are_measured(
    rig: Rig, tmp_path: Path
) -> None:
    lag: list[float | None] = [7200.0]

    async def sync_lag() -> float | None:
        return lag[0]

    backlog = Backlog(frames=85)
    job, monotonic = _self_checks(rig, tmp_path, backlog=backlog, sync_lag_s=sync_lag)
    seen: list[str] = []
    for _ in range(2):
        monotonic.value += 30
        seen += await _check_run(rig, job)
    assert sorted(seen) == ["system.anomaly:spool", "system.anomaly:sync"]
    payload = {e.payload["check"]: e.payload for e in await rig.events()}
    assert payload["spool"]["value"] == 0.85
    assert payload["spool"]["threshold"] == 0.8

    lag[0] = None  # sync switched off: the check is skipped, not cleared
    backlog.frames = 0
    for _ in range(2):
        monotonic.value += 30
        seen += await _check_run(rig, job)
    assert seen[-1] == "system.recovered:spool"
    assert "system.recovered:sync" not in seen


async def test_a_clock_jump_raises_once_then_clears(rig: Rig, tmp_path: Path) -> None:
    job, monotonic = _self_checks(rig, tmp_path)
    seen: list[str] = []
    assert await _check_run(rig, job) == []  # the first run sets the baseline
    # The wall clock jumps 5 minutes ahead while 30 s pass.
    rig.clock.advance(300)
    for _ in range(6):
        monotonic.value += 30
        seen += await _check_run(rig, job)
    assert seen == ["system.anomaly:clock", "system.recovered:clock"]
    jump = (await rig.events())[0].payload
    assert jump["value"] == pytest.approx(300)


async def test_a_raised_check_is_not_raised_again_after_a_restart(
    rig: Rig, tmp_path: Path
) -> None:
    breaker = Breaker(state="open")
    job, _ = _self_checks(rig, tmp_path, recognizer=breaker)
    await _check_run(rig, job)
    assert await _check_run(rig, job) == ["system.anomaly:recognizer"]

    again, _ = _self_checks(rig, tmp_path, recognizer=breaker)
    for _ in range(3):
        assert await _check_run(rig, again) == []


class FlakyHealth(HealthRepository):
    """The health tables, with a read query that fails while told to."""

    failing = False

    async def ping(self) -> None:
        if self.failing:
            raise RuntimeError("disk I/O error")
        await super().ping()


async def test_a_failing_database_query_raises_and_clears(
    rig: Rig, tmp_path: Path
) -> None:
    flaky = FlakyHealth(rig.db)
    rig.health = flaky
    job, monotonic = _self_checks(rig, tmp_path)
    seen: list[str] = []
    for failing in (False, True, True, True, False, False):
        flaky.failing = failing
        monotonic.value += 30
        seen += await _check_run(rig, job)
    assert seen == ["system.anomaly:database", "system.recovered:database"]
    detail = (await rig.events())[0].payload["detail"]
    assert "disk I/O error" in detail


async def test_a_failed_write_is_retried_with_its_event(
    rig: Rig, tmp_path: Path
) -> None:
    breaker = Breaker(state="open")
    job, _ = _self_checks(rig, tmp_path, recognizer=breaker)
    await _check_run(rig, job)
    await rig.db.connection.execute("ALTER TABLE self_checks RENAME TO kept")
    assert await _check_run(rig, job) == []  # the write fails: nothing is lost
    await rig.db.connection.execute("ALTER TABLE kept RENAME TO self_checks")
    assert "system.anomaly:recognizer" in await _check_run(rig, job)
    assert len(await rig.events()) == 1


# --- the scheduler ---------------------------------------------------------------


async def test_the_monitor_runs_its_jobs_on_schedule_and_stops(
    rig: Rig, tmp_path: Path
) -> None:
    settings = MonitorSettings(
        liveness_interval_s=0.05, probe_interval_s=0.05, self_check_interval_s=0.05
    )
    await rig.add(expected_interval_s=10.0)
    job = LivenessJob(rig.cameras, rig.health, rig.activity, settings, UTC, rig.clock)
    prober = ScriptedProber(ok=True)
    checks, _ = _self_checks(rig, tmp_path)
    monitor = HealthMonitor(
        job, ProbeJob(rig.cameras, prober, rig.activity, rig.clock), checks, settings
    )

    await monitor.start()
    assert monitor.running
    # Polled, bounded: the scheduler's first run is one interval away.
    for _ in range(250):
        if await rig.health.camera_health():
            break
        await asyncio.sleep(0.02)
    await monitor.stop()
    assert not monitor.running

    rows = len(await rig.health.self_checks())
    updated = (await rig.health.camera_health())[0].updated_at
    await asyncio.sleep(0.2)
    rig.clock.advance(1)
    assert (await rig.health.camera_health())[0].updated_at == updated
    assert len(await rig.health.self_checks()) == rows
