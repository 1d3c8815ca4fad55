"""Status service: one read-only snapshot of the appliance for its status views.

It gathers what the attendance, camera, health and sync services already
know into one frozen value, so the HTML page and the JSON route show the same
thing. It holds counts and device states only: no person is named in it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from edge_agent.clients.storage.cameras import CameraStatus
from edge_agent.clock import Clock
from edge_agent.models import DailyRow, DayStatus
from edge_agent.services.attendance import AttendanceService
from edge_agent.services.cameras import CameraService
from edge_agent.services.health import HealthService, Readiness
from edge_agent.services.sync import StreamStatus, SyncService


@dataclass(frozen=True, slots=True)
class DayCounts:
    """How many people stand in each day status, and the marks counted."""

    day: date
    present: int
    late: int
    half_day: int
    absent: int
    off: int
    marks: int


@dataclass(frozen=True, slots=True)
class CameraLine:
    """One camera as the health monitor last judged it; ``state`` is None
    before its first judgment or when it is not watched."""

    id: str
    name: str
    location: str | None
    enabled: bool
    state: str | None
    since: datetime | None
    last_frame_at: datetime | None
    frames_last_minute: int | None
    grade: str | None


@dataclass(frozen=True, slots=True)
class RecognizerLine:
    """The breaker, the readiness verdict with its reasons, and the spool."""

    ready: bool
    breaker: str
    database: str
    reasons: tuple[str, ...]
    spool_frames: int
    spool_bytes: int


@dataclass(frozen=True, slots=True)
class SyncLine:
    """Every synced stream; ``enabled`` is False without a central server."""

    enabled: bool
    streams: tuple[StreamStatus, ...]


@dataclass(frozen=True, slots=True)
class StatusSnapshot:
    at: datetime
    site_id: str
    timezone: ZoneInfo
    today: DayCounts
    cameras: tuple[CameraLine, ...]
    recognizer: RecognizerLine
    sync: SyncLine


class StatusService:
    def __init__(
        self,
        attendance: AttendanceService,
        cameras: CameraService,
        health: HealthService,
        sync: SyncService,
        clock: Clock,
        site_id: str,
    ) -> None:
        self._attendance = attendance
        self._cameras = cameras
        self._health = health
        self._sync = sync
        self._clock = clock
        self._site_id = site_id

    async def snapshot(self) -> StatusSnapshot:
        """The appliance as of now; each part is read once, one after another."""
        today = self._attendance.today()
        rows = await self._attendance.daily_report(today)
        cameras = await self._cameras.statuses()
        readiness = await self._health.readiness()
        streams = await self._sync.status()

        return StatusSnapshot(
            at=self._clock.now(),
            site_id=self._site_id,
            timezone=self._attendance.policy.timezone,
            today=count_day(today, rows),
            cameras=tuple(camera_line(c) for c in cameras),
            recognizer=recognizer_line(readiness),
            sync=SyncLine(self._sync.enabled, tuple(streams)),
        )


def count_day(day: date, rows: Sequence[DailyRow]) -> DayCounts:
    """Counts by day status; names and ids of the rows are dropped here."""
    statuses = Counter(row.status for row in rows)
    return DayCounts(
        day=day,
        present=statuses[DayStatus.PRESENT],
        late=statuses[DayStatus.LATE],
        half_day=statuses[DayStatus.HALF_DAY],
        absent=statuses[DayStatus.ABSENT],
        off=statuses[DayStatus.OFF],
        marks=sum(row.marks for row in rows),
    )


def camera_line(status: CameraStatus) -> CameraLine:
    camera, health = status.camera, status.health
    activity: dict[str, Any] = health.activity if health is not None else {}
    frames = activity.get("accepted_last_minute")
    grade = activity.get("grade")
    return CameraLine(
        id=camera.id,
        name=camera.name,
        location=camera.location,
        enabled=camera.enabled,
        state=health.state if health is not None else None,
        since=health.since if health is not None else None,
        last_frame_at=health.last_frame_at if health is not None else None,
        frames_last_minute=frames if isinstance(frames, int) else None,
        grade=grade if isinstance(grade, str) else None,
    )


def recognizer_line(readiness: Readiness) -> RecognizerLine:
    checks = readiness.checks
    return RecognizerLine(
        ready=readiness.ready,
        breaker=str(checks.get("recognizer", "unknown")),
        database=str(checks.get("database", "unknown")),
        reasons=tuple(readiness.reasons),
        spool_frames=int(checks.get("spool_frames", 0)),
        spool_bytes=int(checks.get("spool_bytes", 0)),
    )
