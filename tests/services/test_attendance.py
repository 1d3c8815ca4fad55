"""Attendance service on a real SQLite file: decisions stored, marks made once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from edge_agent.clients.storage.attendance import AttendanceRepository
from edge_agent.clients.storage.cameras import CameraRepository
from edge_agent.clients.storage.database import Database
from edge_agent.clients.storage.frames import FrameRecord, FrameRepository
from edge_agent.clients.storage.people import PeopleRepository
from edge_agent.models import (
    Box,
    Camera,
    Candidate,
    Direction,
    Frame,
    Outcome,
    Person,
    PersonStatus,
    RecognizedFace,
)
from edge_agent.services.attendance import AttendanceService, FrameFindings
from edge_agent.services.rules import AttendancePolicy

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


class StepClock:
    def __init__(self, now: datetime) -> None:
        self.moment = now

    def now(self) -> datetime:
        return self.moment


@dataclass
class World:
    service: AttendanceService
    clock: StepClock
    camera: Camera
    person: Person
    db: Database


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    """An attendance service over a fresh database with one person and camera."""
    db = Database(tmp_path / "edge.sqlite3")
    await db.open()
    people = PeopleRepository(db)
    person = Person("p1", "E1", "Alice", None, PersonStatus.ACTIVE, START)
    camera = Camera("gate", "Gate", Direction.ENTRY, START)
    await people.add(person)
    await CameraRepository(db).add(camera)

    clock = StepClock(START)
    policy = AttendancePolicy(0.85, timedelta(minutes=5), ZoneInfo("UTC"))
    service = AttendanceService(AttendanceRepository(db), people, policy, clock)
    yield World(service, clock, camera, person, db)
    await db.close()


async def _frame(world: World) -> Frame:
    """A frame in the queue, as the pipeline would hand it over."""
    now = world.clock.now()
    frame = Frame(uuid.uuid4().hex, "gate", now, now, "0" * 64, 10, 10, b"")
    record = FrameRecord(frame.id, "gate", "0" * 64, 1, "jpeg", 10, 10, now, now)
    await FrameRepository(world.db, 0).add(record)
    return frame


def _face(subject: str, similarity: float) -> RecognizedFace:
    return RecognizedFace(Box(0, 0, 9, 9, 1.0), (Candidate(subject, similarity),))


async def test_first_frame_marks_and_repeats_are_duplicates(world: World) -> None:
    first = await world.service.decide(
        await _frame(world), world.camera, [_face("p1", 0.9)]
    )
    world.clock.moment += timedelta(seconds=30)
    again = await world.service.decide(
        await _frame(world), world.camera, [_face("p1", 0.9)]
    )
    world.clock.moment += timedelta(minutes=6)
    later = await world.service.decide(
        await _frame(world), world.camera, [_face("p1", 0.9)]
    )

    outcomes = [d.decisions[0].outcome for d in (first, again, later)]
    assert outcomes == [Outcome.MARKED, Outcome.DUPLICATE, Outcome.MARKED]
    assert first.people["p1"].name == "Alice"
    marks = await world.service.list_marks(person="E1")
    assert [m.mark.decision_id for m in marks] == [
        first.decisions[0].id,
        later.decisions[0].id,
    ]


async def test_concurrent_frames_of_one_person_make_one_mark(world: World) -> None:
    frames = [await _frame(world) for _ in range(5)]
    results = await asyncio.gather(
        *(world.service.decide(f, world.camera, [_face("p1", 0.95)]) for f in frames)
    )

    outcomes = sorted(r.decisions[0].outcome.value for r in results)
    assert outcomes == ["duplicate"] * 4 + ["marked"]
    assert len(await world.service.list_marks()) == 1


async def test_same_person_twice_in_one_frame_marks_once(world: World) -> None:
    faces = [_face("p1", 0.95), _face("p1", 0.91)]

    result = await world.service.decide(await _frame(world), world.camera, faces)

    assert [d.outcome for d in result.decisions] == [Outcome.MARKED, Outcome.DUPLICATE]


async def test_every_decision_is_stored_with_its_reason(world: World) -> None:
    frame = await _frame(world)
    faces = [_face("p1", 0.40), _face("nobody", 0.99)]

    await world.service.decide(frame, world.camera, faces)
    await world.service.decide(await _frame(world), world.camera, [])

    rows = await world.db.fetch_all("SELECT outcome, reason FROM decisions ORDER BY id")
    assert [r["outcome"] for r in rows] == ["unknown", "unknown", "no_face"]
    assert all(r["reason"] for r in rows)
    assert await world.service.list_marks() == []


async def test_day_filter_uses_the_site_day(world: World) -> None:
    await world.service.decide(await _frame(world), world.camera, [_face("p1", 0.9)])

    today = await world.service.list_marks(day=world.service.today())
    other = await world.service.list_marks(day=START.date() + timedelta(days=1))

    assert len(today) == 1
    assert other == []


async def test_a_frame_is_decided_only_once(world: World) -> None:
    frame = await _frame(world)

    first = await world.service.decide(frame, world.camera, [_face("p1", 0.95)])
    again = await world.service.decide(frame, world.camera, [_face("p1", 0.95)])

    assert [d.outcome for d in first.decisions] == [Outcome.MARKED]
    assert again.decisions == []
    assert len((await world.service.decisions_of(frame.id)).decisions) == 1


async def test_one_batch_shares_the_duplicate_window(world: World) -> None:
    frames = [await _frame(world) for _ in range(3)]
    findings = [FrameFindings(f, world.camera, [_face("p1", 0.9)]) for f in frames]

    decided = await world.service.decide_batch(findings)

    outcomes = [decided[f.id].decisions[0].outcome for f in frames]
    assert outcomes == [Outcome.MARKED, Outcome.DUPLICATE, Outcome.DUPLICATE]
