"""Shift service and shift rules on a real SQLite file: shifts, assignments,
marks classified as they are made, and the daily report across midnight and
a clock change (Europe/Berlin)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from edge_agent.clients.storage.attendance import AttendanceRepository
from edge_agent.clients.storage.audit import AuditRepository
from edge_agent.clients.storage.cameras import CameraRepository
from edge_agent.clients.storage.database import Database
from edge_agent.clients.storage.frames import FrameRecord, FrameRepository
from edge_agent.clients.storage.people import PeopleRepository
from edge_agent.clients.storage.shifts import ShiftRepository
from edge_agent.errors import Conflict, InvalidInput, NotFound
from edge_agent.models import (
    Box,
    Camera,
    Candidate,
    DailyRow,
    DayStatus,
    Direction,
    Frame,
    Mark,
    MarkClass,
    MarkKind,
    Person,
    PersonStatus,
    RecognizedFace,
    local_admin,
)
from edge_agent.services.attendance import AttendanceService
from edge_agent.services.audit import AuditAction, AuditFilter, AuditService
from edge_agent.services.rules import AttendancePolicy
from edge_agent.services.shifts import ShiftService, ShiftSpec
from tests.support import ManualClock

BERLIN = ZoneInfo("Europe/Berlin")
ADMIN = local_admin("tester")
EVERY_DAY = range(7)


class Site:
    """Attendance and shift services of a Berlin site with three people and
    an entry, an exit and a two-way camera."""

    def __init__(self, db: Database, clock: ManualClock) -> None:
        self.db = db
        self.clock = clock
        people = PeopleRepository(db)
        repository = ShiftRepository(db)
        policy = AttendancePolicy(0.85, timedelta(minutes=5), BERLIN)
        self.audit = AuditService(AuditRepository(db), clock)
        self.attendance = AttendanceService(
            AttendanceRepository(db), people, policy, clock, shifts=repository
        )
        self.shifts = ShiftService(repository, people, self.audit, clock, BERLIN)
        self.cameras = {d: Camera(d.value, d.value, d, clock.now()) for d in Direction}

    async def see(self, person_id: str, direction: Direction, local: datetime) -> Mark:
        """A frame of ``person_id`` on the camera of ``direction`` at the
        Berlin wall-clock time ``local``; return the mark it made."""
        moment = local.replace(tzinfo=BERLIN).astimezone(UTC)
        self.clock.moment = moment
        camera = self.cameras[direction]
        frame = Frame(uuid.uuid4().hex, camera.id, moment, moment, "0" * 64, 9, 9, b"")
        record = FrameRecord(
            frame.id, camera.id, "0" * 64, 1, "jpeg", 9, 9, moment, moment
        )
        await FrameRepository(self.db, 0).add(record)
        face = RecognizedFace(Box(0, 0, 9, 9, 1.0), (Candidate(person_id, 0.95),))

        decided = await self.attendance.decide(frame, camera, [face])
        mark = decided.decisions[0].mark
        assert mark is not None, decided.decisions[0].reason
        return mark

    async def report(self, day: date, person_id: str) -> DailyRow:
        rows = await self.attendance.daily_report(day)
        return next(row for row in rows if row.person_id == person_id)


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    """A fresh database; the clock stands at 00:30 on 28 March in Berlin."""
    db = Database(tmp_path / "edge.sqlite3")
    await db.open()
    clock = ManualClock(datetime(2026, 3, 27, 23, 30, tzinfo=UTC))
    people = PeopleRepository(db)
    for number, name in enumerate(("Nina", "Dan", "Free"), start=1):
        await people.add(
            Person(
                f"p{number}", f"E{number}", name, None, PersonStatus.ACTIVE, clock.now()
            )
        )
    built = Site(db, clock)
    for camera in built.cameras.values():
        await CameraRepository(db).add(camera)
    yield built
    await db.close()


def _spec(name: str, start: time, end: time, days: range = EVERY_DAY) -> ShiftSpec:
    return ShiftSpec(name, list(days), start, end)


# --- the service --------------------------------------------------------------


async def test_shifts_are_created_listed_and_audited(site: Site) -> None:
    night = await site.shifts.create(_spec("night", time(22), time(6)), ADMIN)
    await site.shifts.create(_spec("day", time(9), time(17), range(5)), ADMIN)

    listed = await site.shifts.list_shifts()

    assert night.crosses_midnight
    assert [s.name for s in listed] == ["day", "night"]
    assert listed[0].days == (0, 1, 2, 3, 4)
    assert listed[1].checkin_before == timedelta(minutes=60)
    entries = await site.audit.list_entries(
        AuditFilter(action=AuditAction.SHIFT_CREATED), None, 10
    )
    assert [e.target for e in entries.entries] == ["shift:night", "shift:day"]


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        pytest.param(_spec("Night Shift", time(22), time(6)), "name", id="bad-name"),
        pytest.param(_spec("none", time(22), time(6)), "name", id="reserved-name"),
        pytest.param(_spec("x", time(9), time(9)), "differ", id="empty"),
        pytest.param(_spec("x", time(9), time(17), range(0)), "weekday", id="no-days"),
        pytest.param(
            ShiftSpec("x", [0], time(6), time(23), checkin_before=timedelta(hours=4)),
            "23 hours",
            id="too-long",
        ),
    ],
)
async def test_bad_shifts_are_refused_naming_the_problem(
    site: Site, spec: ShiftSpec, problem: str
) -> None:
    with pytest.raises(InvalidInput, match=problem):
        await site.shifts.create(spec, ADMIN)


async def test_a_shift_name_is_taken_once(site: Site) -> None:
    await site.shifts.create(_spec("day", time(9), time(17)), ADMIN)

    with pytest.raises(Conflict):
        await site.shifts.create(_spec("day", time(8), time(16)), ADMIN)


async def test_assigning_defaults_to_the_site_local_today(site: Site) -> None:
    await site.shifts.create(_spec("day", time(9), time(17)), ADMIN)

    assignment = await site.shifts.assign("E2", "day", None, ADMIN)
    ended = await site.shifts.assign("p2", None, date(2026, 4, 1), ADMIN)

    # 23:30 UTC on the 27th is already the 28th in Berlin.
    assert assignment.effective_from == date(2026, 3, 28)
    assert assignment.person_id == "p2"
    assert ended.shift is None
    with pytest.raises(NotFound):
        await site.shifts.assign("E2", "evening", None, ADMIN)
    with pytest.raises(NotFound):
        await site.shifts.assign("E9", "day", None, ADMIN)
    entries = await site.audit.list_entries(
        AuditFilter(action=AuditAction.SHIFT_ASSIGNED), None, 10
    )
    assert [e.details["shift"] for e in entries.entries] == ["day", None]


# --- marks and the daily report --------------------------------------------------


async def test_a_day_shift_classifies_marks_and_the_day(site: Site) -> None:
    await site.shifts.create(_spec("day", time(9), time(17)), ADMIN)
    await site.shifts.assign("E2", "day", date(2026, 3, 1), ADMIN)

    check_in = await site.see("p2", Direction.ENTRY, datetime(2026, 3, 30, 9, 10))
    check_out = await site.see("p2", Direction.EXIT, datetime(2026, 3, 30, 16, 0))
    row = await site.report(date(2026, 3, 30), "p2")

    assert (check_in.classification, check_in.shift) == (MarkClass.LATE, "day")
    assert check_out.classification is MarkClass.EARLY_EXIT
    assert row.status is DayStatus.LATE
    assert (row.late, row.early_exit) == (True, True)
    assert row.worked == timedelta(hours=6, minutes=50)
    assert row.shift == "day"


async def test_a_night_shift_across_the_spring_change_is_one_work_day(
    site: Site,
) -> None:
    await site.shifts.create(_spec("night", time(22), time(6)), ADMIN)
    await site.shifts.assign("E1", "night", date(2026, 3, 1), ADMIN)

    # 22:00 CET on the 28th to 06:00 CEST on the 29th is seven hours.
    check_in = await site.see("p1", Direction.BOTH, datetime(2026, 3, 28, 21, 55))
    check_out = await site.see("p1", Direction.BOTH, datetime(2026, 3, 29, 6, 5))
    row = await site.report(date(2026, 3, 28), "p1")
    next_day = await site.report(date(2026, 3, 29), "p1")

    assert (check_in.kind, check_out.kind) == (MarkKind.CHECK_IN, MarkKind.CHECK_OUT)
    assert check_out.local_day == "2026-03-29"
    assert check_in.work_day == check_out.work_day == "2026-03-28"
    assert check_out.classification is MarkClass.ON_TIME
    assert row.worked == timedelta(hours=7, minutes=10)
    assert row.status is DayStatus.PRESENT
    assert next_day.status is DayStatus.ABSENT


async def test_a_night_shift_across_the_autumn_change_lasts_nine_hours(
    site: Site,
) -> None:
    await site.shifts.create(_spec("night", time(22), time(6)), ADMIN)
    await site.shifts.assign("E1", "night", date(2026, 3, 1), ADMIN)

    await site.see("p1", Direction.ENTRY, datetime(2026, 10, 24, 22, 0))
    early = await site.see("p1", Direction.EXIT, datetime(2026, 10, 25, 5, 0))
    row = await site.report(date(2026, 10, 24), "p1")

    # 22:00 CEST to 05:00 CET is eight hours, and still an hour early.
    assert row.worked == timedelta(hours=8)
    assert early.classification is MarkClass.EARLY_EXIT


async def test_people_without_a_shift_are_present_or_off(site: Site) -> None:
    mark = await site.see("p3", Direction.ENTRY, datetime(2026, 3, 30, 11, 0))

    marked = await site.report(date(2026, 3, 30), "p3")
    quiet = await site.report(date(2026, 3, 31), "p3")

    assert mark.classification is MarkClass.UNSCHEDULED
    assert marked.status is DayStatus.PRESENT
    assert marked.missing_check_out
    assert quiet.status is DayStatus.OFF


async def test_a_later_assignment_leaves_past_days_with_their_shift(
    site: Site,
) -> None:
    await site.shifts.create(_spec("day", time(9), time(17)), ADMIN)
    await site.shifts.create(_spec("night", time(22), time(6)), ADMIN)
    await site.shifts.assign("E2", "day", date(2026, 3, 1), ADMIN)
    await site.shifts.assign("E2", "night", date(2026, 4, 1), ADMIN)

    before = await site.see("p2", Direction.ENTRY, datetime(2026, 3, 31, 9, 0))
    after = await site.see("p2", Direction.ENTRY, datetime(2026, 4, 1, 21, 30))

    assert (before.shift, before.classification) == ("day", MarkClass.ON_TIME)
    assert (after.shift, after.classification) == ("night", MarkClass.ON_TIME)
    assert (await site.report(date(2026, 3, 31), "p2")).shift == "day"
