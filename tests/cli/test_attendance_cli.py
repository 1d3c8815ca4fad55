"""Site admin CLI: ``attendance report`` and ``attendance shifts`` on a real
database file."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from typer.testing import CliRunner, Result

from edge_agent.cli.attendance import app
from edge_agent.clients.storage.attendance import AttendanceRepository
from edge_agent.clients.storage.cameras import CameraRepository
from edge_agent.clients.storage.database import Database
from edge_agent.clients.storage.frames import FrameRecord, FrameRepository
from edge_agent.clients.storage.people import PeopleRepository
from edge_agent.clients.storage.shifts import ShiftRepository
from edge_agent.config import Settings
from edge_agent.models import (
    Box,
    Camera,
    Candidate,
    Direction,
    Frame,
    Person,
    PersonStatus,
    RecognizedFace,
)
from edge_agent.services.attendance import AttendanceService
from edge_agent.services.rules import AttendancePolicy
from tests.support import ManualClock

runner = CliRunner()

MONDAY = datetime(2026, 3, 2, tzinfo=UTC)


def _invoke(settings: Settings, *args: str) -> Result:
    data_dir = str(settings.storage.data_dir)
    return runner.invoke(app, [*args, "--data-dir", data_dir], env={"COLUMNS": "160"})


def _ok(settings: Settings, *args: str) -> str:
    result = _invoke(settings, *args)
    assert result.exit_code == 0, result.output
    return result.stdout


def _add_people(settings: Settings) -> None:
    """Alice and Bob, and the door camera, as the daemon would have stored them."""

    async def add() -> None:
        db = Database(settings.storage.database_path)
        await db.open()
        people = PeopleRepository(db)
        for number, name in ((1, "Alice"), (2, "Bob")):
            await people.add(
                Person(
                    f"p{number}", f"E{number}", name, None, PersonStatus.ACTIVE, MONDAY
                )
            )
        await CameraRepository(db).add(Camera("door", "Door", Direction.BOTH, MONDAY))
        await db.close()

    asyncio.run(add())


def _walk_through(settings: Settings, *times: timedelta) -> None:
    """Alice passes the two-way door at these times after Monday 00:00 UTC."""

    async def walk() -> None:
        db = Database(settings.storage.database_path)
        await db.open()
        clock = ManualClock(MONDAY)
        policy = AttendancePolicy(0.85, timedelta(minutes=5), ZoneInfo("UTC"))
        service = AttendanceService(
            AttendanceRepository(db),
            PeopleRepository(db),
            policy,
            clock,
            shifts=ShiftRepository(db),
        )
        camera = Camera("door", "Door", Direction.BOTH, MONDAY)
        face = RecognizedFace(Box(0, 0, 9, 9, 1.0), (Candidate("p1", 0.95),))
        for offset in times:
            clock.moment = MONDAY + offset
            frame = await _queued_frame(db, clock.moment)
            await service.decide(frame, camera, [face])
        await db.close()

    asyncio.run(walk())


async def _queued_frame(db: Database, moment: datetime) -> Frame:
    frame_id = uuid.uuid4().hex
    record = FrameRecord(frame_id, "door", "0" * 64, 1, "jpeg", 9, 9, moment, moment)
    await FrameRepository(db, 0).add(record)
    return Frame(frame_id, "door", moment, moment, "0" * 64, 9, 9, b"")


def _prepare(settings: Settings) -> None:
    _add_people(settings)
    _ok(
        settings,
        "shifts",
        "add",
        "day",
        "--days",
        "mon-fri",
        "--start",
        "09:00",
        "--end",
        "17:00",
    )
    _ok(settings, "shifts", "assign", "E1", "day", "--from", "2026-03-01")
    _ok(settings, "shifts", "assign", "E2", "day", "--from", "2026-03-01")
    _walk_through(settings, timedelta(hours=9, minutes=20), timedelta(hours=17))


def test_report_prints_json_with_each_persons_day(settings: Settings) -> None:
    _prepare(settings)

    body = json.loads(
        _ok(settings, "report", "--day", "2026-03-02", "--format", "json")
    )

    assert body["day"] == "2026-03-02"
    rows = {row["employee_no"]: row for row in body["people"]}
    assert rows["E1"]["status"] == "late"
    assert rows["E1"]["worked_s"] == (7 * 60 + 40) * 60
    assert rows["E1"]["shift"] == "day"
    assert rows["E2"]["status"] == "absent"


def test_report_prints_csv_and_a_table(settings: Settings) -> None:
    _prepare(settings)

    as_csv = _ok(settings, "report", "--day", "2026-03-02", "--format", "csv")
    table = _ok(settings, "report", "--day", "2026-03-02")

    rows = list(csv.DictReader(io.StringIO(as_csv)))
    assert [(r["employee_no"], r["status"], r["worked"]) for r in rows] == [
        ("E1", "late", "7:40"),
        ("E2", "absent", "0:00"),
    ]
    assert "Alice" in table
    assert "late" in table
    assert "09:20 UTC" in table


def test_shifts_are_listed_and_marks_show_their_class(settings: Settings) -> None:
    _prepare(settings)

    shifts = json.loads(_ok(settings, "shifts", "list", "--json"))
    marks = json.loads(_ok(settings, "list", "--day", "2026-03-02", "--json"))
    table = _ok(settings, "shifts", "list")

    assert [(s["name"], s["days"]) for s in shifts] == [
        ("day", ["mon", "tue", "wed", "thu", "fri"])
    ]
    assert [(m["kind"], m["classification"]) for m in marks] == [
        ("check_in", "late"),
        ("check_out", "on_time"),
    ]
    assert "mon,tue,wed,thu,fri 09:00-17:00" in table


def test_bad_shift_options_are_one_line_errors(settings: Settings) -> None:
    _add_people(settings)

    bad_days = _invoke(
        settings, "shifts", "add", "x", "--days", "moon", "--start", "9", "--end", "17"
    )
    bad_name = _invoke(
        settings,
        "shifts",
        "add",
        "Night Shift",
        "--days",
        "fri-mon",
        "--start",
        "22:00",
        "--end",
        "06:00",
    )
    unknown = _invoke(settings, "shifts", "assign", "E1", "ghost")

    for result in (bad_days, bad_name, unknown):
        assert result.exit_code != 0
        assert result.output.count("\n") == 1, result.output
        assert "error:" in result.output
    assert "--days" in bad_days.output
    assert "name" in bad_name.output
