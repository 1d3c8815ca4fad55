"""Camera registry: lifecycle, validation, cache, audit, schedules, the camera's
own threshold in the rules, and the activity tracker's counters and grade."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from edge_agent.clients.storage.audit import AuditFilter, AuditRepository
from edge_agent.clients.storage.cameras import CameraRepository
from edge_agent.clients.storage.database import Database
from edge_agent.clients.storage.security import CameraKeyRepository
from edge_agent.errors import Conflict, InvalidInput, NotFound
from edge_agent.models import (
    ActiveWindow,
    Box,
    Camera,
    Candidate,
    Direction,
    Outcome,
    Person,
    PersonStatus,
    RecognizedFace,
    local_admin,
)
from edge_agent.security.api_keys import hash_api_key
from edge_agent.services.audit import AuditAction, AuditService
from edge_agent.services.camera_activity import CameraActivity, Grade, grade_for
from edge_agent.services.cameras import (
    CameraDisabled,
    CameraPatch,
    CameraRemoved,
    CameraService,
    ensure_accepting,
    parse_schedule,
)
from edge_agent.services.rules import AttendancePolicy, judge
from tests.support import ManualClock

ADMIN = local_admin("test")
NOW = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)


@dataclass
class Registry:
    service: CameraService
    keys: CameraKeyRepository
    audit: AuditService
    clock: ManualClock


@pytest.fixture
async def registry(tmp_path: Path) -> AsyncIterator[Registry]:
    """The camera service on a real SQLite file."""
    db = Database(tmp_path / "edge.sqlite3")
    await db.open()
    clock = ManualClock(NOW)
    keys = CameraKeyRepository(db)
    audit = AuditService(AuditRepository(db), clock)
    service = CameraService(CameraRepository(db), keys, audit, clock, 60)
    yield Registry(service, keys, audit, clock)
    await db.close()


async def test_a_camera_is_registered_with_all_its_settings(registry: Registry) -> None:
    window = {"days": [0, 1], "start": "08:00", "end": "18:00"}
    patch = CameraPatch(
        location="Hall A",
        expected_interval_s=5.0,
        match_threshold=0.9,
        probe_url="rtsp://admin:pw@10.0.0.5/stream",
        schedule=parse_schedule([window]),
    )
    registered = await registry.service.register(
        "door", "Front door", Direction.ENTRY, ADMIN, patch
    )

    stored = await registry.service.describe("door")
    assert stored == registered.camera
    assert stored.location == "Hall A"
    assert stored.match_threshold == 0.9
    assert stored.schedule == (ActiveWindow((0, 1), time(8), time(18)),)
    assert await registry.keys.camera_for(hash_api_key(registered.api_key), NOW)


async def test_update_changes_given_fields_and_clears_nulls(registry: Registry) -> None:
    await registry.service.register(
        "door", None, Direction.ENTRY, ADMIN, CameraPatch(location="Hall A")
    )
    registry.clock.moment = NOW + timedelta(minutes=1)

    updated = await registry.service.update(
        "door", CameraPatch(name="Door", location=None, expected_interval_s=0), ADMIN
    )

    assert (updated.name, updated.location, updated.expected_interval_s) == (
        "Door",
        None,
        0,
    )
    assert updated.direction is Direction.ENTRY
    assert updated.updated_at == registry.clock.moment
    assert await registry.service.describe("door") == updated


@pytest.mark.parametrize(
    "patch",
    [
        pytest.param(CameraPatch(name=" "), id="blank-name"),
        pytest.param(CameraPatch(match_threshold=1.5), id="threshold-above-one"),
        pytest.param(CameraPatch(expected_interval_s=-1), id="negative-interval"),
        pytest.param(CameraPatch(probe_url="ftp://cam/x"), id="probe-scheme"),
        pytest.param(CameraPatch(probe_url="http:///nohost"), id="probe-no-host"),
        pytest.param(CameraPatch(probe_url="http://cam:99999/"), id="probe-bad-port"),
    ],
)
async def test_bad_settings_are_refused(registry: Registry, patch: CameraPatch) -> None:
    await registry.service.register("door", None, Direction.ENTRY, ADMIN)
    with pytest.raises(InvalidInput):
        await registry.service.update("door", patch, ADMIN)


@pytest.mark.parametrize(
    "window",
    [
        pytest.param({"days": [], "start": "08:00", "end": "09:00"}, id="no-days"),
        pytest.param({"days": [7], "start": "08:00", "end": "09:00"}, id="day-7"),
        pytest.param({"days": [1], "start": "8:00", "end": "09:00"}, id="short-time"),
        pytest.param({"days": [1], "start": "24:00", "end": "09:00"}, id="hour-24"),
        pytest.param({"days": [1], "start": "08:00"}, id="no-end"),
    ],
)
def test_bad_schedules_are_refused(window: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        parse_schedule([window])


async def test_disable_and_enable_refuse_then_accept_frames(registry: Registry) -> None:
    await registry.service.register("door", None, Direction.ENTRY, ADMIN)
    # Cached by a frame lookup; a change must not be hidden by the cache.
    ensure_accepting(await registry.service.get("door"))

    await registry.service.disable("door", ADMIN)
    with pytest.raises(CameraDisabled) as refused:
        ensure_accepting(await registry.service.get("door"))
    assert (refused.value.status, refused.value.slug) == (409, "camera-disabled")

    await registry.service.enable("door", ADMIN)
    ensure_accepting(await registry.service.get("door"))


async def test_remove_hides_revokes_and_keeps_the_row(registry: Registry) -> None:
    registered = await registry.service.register("door", None, Direction.ENTRY, ADMIN)
    await registry.service.get("door")

    await registry.service.remove("door", ADMIN)

    assert await registry.service.list_cameras() == []
    with pytest.raises(NotFound):
        await registry.service.describe("door")
    with pytest.raises(CameraRemoved):
        ensure_accepting(await registry.service.get("door"))
    key_hash = hash_api_key(registered.api_key)
    assert await registry.keys.camera_for(key_hash, NOW) is None
    with pytest.raises(NotFound):
        await registry.service.disable("door", ADMIN)


async def test_registering_a_removed_id_brings_it_back(registry: Registry) -> None:
    await registry.service.register(
        "door", "Old", Direction.ENTRY, ADMIN, CameraPatch(location="Hall A")
    )
    await registry.service.disable("door", ADMIN)
    await registry.service.remove("door", ADMIN)

    revived = await registry.service.register("door", "New", Direction.EXIT, ADMIN)

    assert (revived.camera.name, revived.camera.direction) == ("New", Direction.EXIT)
    assert revived.camera.location is None
    assert revived.camera.enabled
    assert not revived.camera.removed
    assert revived.camera.created_at == NOW
    ensure_accepting(await registry.service.get("door"))
    with pytest.raises(Conflict):
        await registry.service.register("door", None, Direction.EXIT, ADMIN)


async def test_every_change_is_audited(registry: Registry) -> None:
    service = registry.service
    await service.register("door", None, Direction.ENTRY, ADMIN)
    await service.update(
        "door", CameraPatch(probe_url="http://u:secret@cam/snap.jpg"), ADMIN
    )
    await service.disable("door", ADMIN)
    await service.enable("door", ADMIN)
    await service.remove("door", ADMIN)
    await service.register("door", None, Direction.ENTRY, ADMIN)

    page = await registry.audit.list_entries(AuditFilter(target="camera:door"), 0, 50)
    actions = [e.action for e in page.entries if e.action.startswith("camera.")]
    assert actions == [
        AuditAction.CAMERA_REGISTERED,
        AuditAction.CAMERA_UPDATED,
        AuditAction.CAMERA_DISABLED,
        AuditAction.CAMERA_ENABLED,
        AuditAction.CAMERA_REMOVED,
        AuditAction.CAMERA_RESTORED,
    ]
    updated = next(e for e in page.entries if e.action == AuditAction.CAMERA_UPDATED)
    assert "secret" not in str(updated.details)


# --- schedules ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("local", "active"),
    [
        pytest.param(datetime(2024, 3, 8, 21, 59), False, id="fri-before"),
        pytest.param(datetime(2024, 3, 8, 23, 0), True, id="fri-night"),
        pytest.param(datetime(2024, 3, 9, 5, 59), True, id="sat-morning"),
        pytest.param(datetime(2024, 3, 9, 6, 0), False, id="sat-end"),
        pytest.param(datetime(2024, 3, 9, 23, 0), False, id="sat-night"),
        pytest.param(datetime(2024, 3, 4, 3, 0), False, id="mon-morning"),
    ],
)
def test_a_window_crossing_midnight(local: datetime, active: bool) -> None:
    window = ActiveWindow((4,), time(22), time(6))
    assert window.covers(local) is active


def test_a_camera_without_schedule_is_always_active() -> None:
    camera = Camera("door", "Door", Direction.ENTRY, NOW)
    assert camera.active_at(NOW, ZoneInfo("Asia/Tokyo"))


def test_a_schedule_is_read_in_the_site_time_zone() -> None:
    camera = Camera(
        "door",
        "Door",
        Direction.ENTRY,
        NOW,
        schedule=(ActiveWindow((0,), time(8), time(9)),),
    )
    # 09:00 UTC on Monday is 18:00 in Tokyo, 10:00 in Berlin, 08:00 in the Azores.
    assert not camera.active_at(NOW, ZoneInfo("Asia/Tokyo"))
    assert not camera.active_at(NOW, ZoneInfo("Europe/Berlin"))
    assert camera.active_at(NOW, ZoneInfo("Atlantic/Azores"))


# --- the camera's own threshold -------------------------------------------------


def test_a_camera_threshold_replaces_the_site_threshold() -> None:
    policy = AttendancePolicy(0.85, timedelta(minutes=5), ZoneInfo("UTC"))
    person = Person("p1", "E1", "Alice", None, PersonStatus.ACTIVE, NOW)
    face = RecognizedFace(Box(0, 0, 10, 10, 1.0), (Candidate("p1", 0.88),))
    lenient = Camera("door", "Door", Direction.ENTRY, NOW)
    strict = Camera("vault", "Vault", Direction.ENTRY, NOW, match_threshold=0.95)

    assert judge(face, person, lenient, None, NOW, policy).outcome is Outcome.MARKED
    assert judge(face, person, strict, None, NOW, policy).outcome is not Outcome.MARKED


# --- activity -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("incidents", "grade"),
    [(0, Grade.EXCELLENT), (2, Grade.FAIR), (3, Grade.POOR), (10, Grade.UNUSABLE)],
    ids=["none", "two", "three", "ten"],
)
def test_grades_follow_incidents_per_hour(incidents: int, grade: Grade) -> None:
    assert grade_for(incidents) is grade


def test_activity_counts_frames_refusals_gaps_and_reconnects() -> None:
    clock = ManualClock(NOW)
    activity = CameraActivity(clock, default_interval_s=10)
    for second in range(0, 60, 10):
        activity.frame_accepted("door", NOW + timedelta(seconds=second))
    activity.frame_accepted("door", NOW + timedelta(seconds=120))  # a gap
    activity.frame_refused(
        "door", "poor-quality: too dark", NOW + timedelta(seconds=121)
    )
    activity.stream_reconnected("door", NOW + timedelta(seconds=122))

    clock.moment = NOW + timedelta(seconds=125)
    snapshot = activity.snapshot("door")
    assert snapshot.accepted_last_hour == 7
    assert snapshot.refused_last_hour == 1
    assert snapshot.accepted_last_minute == 1
    assert snapshot.gaps_last_hour == 1
    assert snapshot.reconnects_last_hour == 1
    assert snapshot.grade is Grade.FAIR
    assert snapshot.last_error == "poor-quality: too dark"
    assert snapshot.last_frame_at == NOW + timedelta(seconds=120)

    later = activity.snapshot("door", NOW + timedelta(hours=2))
    assert (later.accepted_last_hour, later.gaps_last_hour, later.grade) == (
        0,
        0,
        Grade.EXCELLENT,
    )


def test_activity_stays_bounded_per_camera() -> None:
    clock = ManualClock(NOW)
    activity = CameraActivity(clock, default_interval_s=1)
    for minute in range(0, 600, 2):  # ten hours, a gap every frame
        activity.frame_accepted("door", NOW + timedelta(minutes=minute))
        activity.stream_reconnected("door", NOW + timedelta(minutes=minute))
    track = activity._tracks["door"]
    assert len(track.buckets) <= 60
    assert max(len(track.gaps), len(track.reconnects)) <= 256
    snapshot = activity.snapshot("door", NOW + timedelta(minutes=599))
    assert snapshot.accepted_last_hour == 30
    assert snapshot.grade is Grade.UNUSABLE
