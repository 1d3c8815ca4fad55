"""Attendance service on a real SQLite file: decisions stored with their codes,
marks made once, reviews, corrections, confirmation and listings."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import AsyncIterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from edge_agent.clients.storage import migrations
from edge_agent.clients.storage.attendance import AttendanceQuery, AttendanceRepository
from edge_agent.clients.storage.audit import AuditRepository
from edge_agent.clients.storage.cameras import CameraRepository
from edge_agent.clients.storage.corrections import CorrectionRepository
from edge_agent.clients.storage.database import Database
from edge_agent.clients.storage.frames import FrameRecord, FrameRepository
from edge_agent.clients.storage.people import PeopleRepository
from edge_agent.clients.storage.reviews import ReviewRepository
from edge_agent.clients.storage.shifts import ShiftRepository
from edge_agent.errors import Conflict, InvalidInput, Refused
from edge_agent.models import (
    Box,
    Camera,
    Candidate,
    DecisionRule,
    Direction,
    Frame,
    MarkKind,
    MarkSource,
    Outcome,
    Person,
    PersonStatus,
    ReasonCode,
    RecognizedFace,
    ReviewState,
    local_admin,
)
from edge_agent.services.attendance import (
    AttendanceService,
    DecisionFilter,
    FrameFindings,
    MarkFilter,
)
from edge_agent.services.audit import AuditAction, AuditFilter, AuditService
from edge_agent.services.corrections import CorrectionService
from edge_agent.services.reviews import ReviewAction, ReviewFilter, ReviewService
from edge_agent.services.rules import AttendancePolicy, Confirmation
from tests.support import ManualClock

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
ADMIN = local_admin("tester")


@dataclass(frozen=True)
class DatedPerson(Person):
    """A person with validity bounds, whatever fields Person itself has."""

    valid_from: date | datetime | None = None
    valid_until: date | datetime | None = None


class PeopleWithBounds(PeopleRepository):
    """The people repository, with some people replaced by dated stand-ins."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.stand_ins: dict[str, Person] = {}

    async def find(self, person_id: str) -> Person | None:
        if person_id in self.stand_ins:
            return self.stand_ins[person_id]
        return await super().find(person_id)


class World:
    """The services under test, on one database, one clock, one camera."""

    def __init__(self, db: Database, people: PeopleWithBounds, camera: Camera) -> None:
        self.db = db
        self.people = people
        self.camera = camera
        self.clock = ManualClock(START)
        self.audit = AuditService(AuditRepository(db), self.clock)
        self.rebuild(_policy())

    def rebuild(self, policy: AttendancePolicy) -> None:
        """Start the services afresh (a restart) with another policy."""
        db, clock, audit = self.db, self.clock, self.audit
        self.service = AttendanceService(
            AttendanceRepository(db),
            self.people,
            policy,
            clock,
            shifts=ShiftRepository(db),
        )
        cameras = CameraRepository(db)
        self.reviews = ReviewService(
            ReviewRepository(db), self.service, cameras, audit, clock
        )
        self.corrections = CorrectionService(
            CorrectionRepository(db), self.service, cameras, audit, clock
        )


def _policy(**changes: object) -> AttendancePolicy:
    values: dict[str, object] = {
        "match_threshold": 0.85,
        "duplicate_window": timedelta(minutes=5),
        "timezone": ZoneInfo("UTC"),
        "unknown_threshold": 0.60,
        "margin": 0.05,
        **changes,
    }
    return AttendancePolicy(**values)  # type: ignore[arg-type]


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    """Attendance, review and correction services over a fresh database with
    one person and one entry camera."""
    db = Database(tmp_path / "edge.sqlite3")
    await db.open()
    people = PeopleWithBounds(db)
    camera = Camera("gate", "Gate", Direction.ENTRY, START)
    await people.add(Person("p1", "E1", "Alice", None, PersonStatus.ACTIVE, START))
    await people.add(Person("p2", "E2", "Bob", None, PersonStatus.ACTIVE, START))
    await CameraRepository(db).add(camera)

    yield World(db, people, camera)
    await db.close()


async def _frame(world: World, camera_id: str = "gate") -> Frame:
    """A frame in the queue, as the pipeline would hand it over."""
    now = world.clock.now()
    frame = Frame(uuid.uuid4().hex, camera_id, now, now, "0" * 64, 10, 10, b"")
    record = FrameRecord(frame.id, camera_id, "0" * 64, 1, "jpeg", 10, 10, now, now)
    await FrameRepository(world.db, 0).add(record)
    return frame


def _face(
    subject: str, similarity: float, *others: tuple[str, float]
) -> RecognizedFace:
    candidates = (Candidate(subject, similarity), *(Candidate(*o) for o in others))
    return RecognizedFace(Box(0, 0, 9, 9, 1.0), candidates)


async def _decide(world: World, *faces: RecognizedFace) -> list[Outcome]:
    decided = await world.service.decide(await _frame(world), world.camera, list(faces))
    return [d.outcome for d in decided.decisions]


# --- deciding ---------------------------------------------------------------------


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


async def test_several_faces_in_one_frame_are_each_decided(world: World) -> None:
    faces = [_face("p1", 0.95), _face("p2", 0.93), _face("nobody", 0.2)]

    outcomes = await _decide(world, *faces)

    assert outcomes == [Outcome.MARKED, Outcome.MARKED, Outcome.UNKNOWN]


async def test_every_decision_is_stored_with_its_code_rule_and_reason(
    world: World,
) -> None:
    await _decide(
        world,
        _face("p1", 0.40),
        _face("nobody", 0.99),
        _face("p1", 0.95, ("p2", 0.93)),
        _face("p2", 0.95),
    )
    await world.service.decide(await _frame(world), world.camera, [])
    blurry = await _frame(world)
    await world.service.decide_batch(
        [FrameFindings(blurry, world.camera, refusal=(Outcome.REJECTED, "too_blurry"))]
    )

    rows = await world.db.fetch_all(
        "SELECT frame_id, camera_id, outcome, reason_code, rule, reason, subject, "
        "similarity FROM decisions ORDER BY id"
    )
    assert [(r["outcome"], r["reason_code"], r["rule"]) for r in rows] == [
        ("unknown", "below_unknown_threshold", "unknown_threshold"),
        ("unknown", "subject_not_enrolled", "enrollment"),
        ("ambiguous", "ambiguous_margin", "margin"),
        ("marked", "marked", "match_threshold"),
        ("no_face", "no_face", "recognition"),
        ("rejected", "quality_too_blurry", "quality_gate"),
    ]
    assert all(r["reason"] and r["frame_id"] and r["camera_id"] for r in rows)
    assert rows[0]["subject"] == "p1"
    assert rows[0]["similarity"] == 0.40


async def test_people_who_may_not_be_marked_get_their_reason(world: World) -> None:
    world.people.stand_ins = {
        "p1": DatedPerson(
            "p1",
            "E1",
            "Alice",
            None,
            PersonStatus.ACTIVE,
            START,
            START.date() + timedelta(1),
        ),
        "p2": DatedPerson(
            "p2",
            "E2",
            "Bob",
            None,
            PersonStatus.ACTIVE,
            START,
            None,
            START - timedelta(1),
        ),
    }

    await _decide(world, _face("p1", 0.99), _face("p2", 0.99))

    rows = await world.db.fetch_all("SELECT outcome, reason_code FROM decisions")
    assert [(r["outcome"], r["reason_code"]) for r in rows] == [
        ("inactive_person", "person_not_yet_valid"),
        ("inactive_person", "person_expired"),
    ]
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


async def test_k_of_n_frames_confirm_and_a_restart_starts_counting_again(
    world: World,
) -> None:
    world.rebuild(_policy(confirmation=Confirmation(2, 3, timedelta(seconds=10))))

    first = await _decide(world, _face("p1", 0.95))
    world.clock.moment += timedelta(seconds=1)
    empty = await _decide(world)
    world.clock.moment += timedelta(seconds=1)
    second = await _decide(world, _face("p1", 0.95))
    world.clock.moment += timedelta(seconds=1)
    third = await _decide(world, _face("p1", 0.95))

    assert first == [Outcome.PENDING_CONFIRMATION]
    assert empty == [Outcome.NO_FACE]
    assert second == [Outcome.MARKED]
    assert third == [Outcome.DUPLICATE]

    world.rebuild(_policy(confirmation=Confirmation(2, 3, timedelta(seconds=10))))
    world.clock.moment += timedelta(minutes=10)
    assert await _decide(world, _face("p1", 0.95)) == [Outcome.PENDING_CONFIRMATION]


async def test_sightings_too_far_apart_do_not_confirm(world: World) -> None:
    world.rebuild(_policy(confirmation=Confirmation(2, 3, timedelta(seconds=10))))

    first = await _decide(world, _face("p1", 0.95))
    world.clock.moment += timedelta(seconds=30)
    second = await _decide(world, _face("p1", 0.95))

    assert first == second == [Outcome.PENDING_CONFIRMATION]


# --- reviews -----------------------------------------------------------------------


async def _grey(world: World, subject: str = "p1") -> int:
    """Decide a grey-zone sighting; return the id of the review it queued."""
    decided = await world.service.decide(
        await _frame(world), world.camera, [_face(subject, 0.7)]
    )
    decision = decided.decisions[0]
    assert decision.outcome is Outcome.NEEDS_REVIEW
    assert decision.review_id is not None
    return decision.review_id


async def test_a_grey_zone_match_waits_for_review_once(world: World) -> None:
    review_id = await _grey(world)
    world.clock.moment += timedelta(seconds=20)
    again = await world.service.decide(
        await _frame(world), world.camera, [_face("p1", 0.72)]
    )

    page = await world.reviews.list_reviews(ReviewFilter(), None, 10)
    assert [r.id for r in page.reviews] == [review_id]
    assert page.reviews[0].state is ReviewState.PENDING
    assert again.decisions[0].reason_code is ReasonCode.GREY_ZONE_REPEAT
    assert again.decisions[0].review_id is None
    assert await world.service.list_marks() == []


async def test_confirming_marks_as_of_the_frame_and_is_audited(world: World) -> None:
    review_id = await _grey(world)
    captured = world.clock.moment
    world.clock.moment += timedelta(hours=2)

    result = await world.reviews.resolve(
        review_id, ReviewAction.CONFIRM, person=None, comment=None, actor=ADMIN
    )

    assert result.mark is not None
    assert result.mark.marked_at == captured
    assert result.mark.kind is MarkKind.CHECK_IN
    assert result.mark.source is MarkSource.REVIEW
    assert result.review.state is ReviewState.CONFIRMED
    assert result.review.result_code is ReasonCode.MARKED
    assert result.review.mark_id == result.mark.id
    marks = await world.service.list_marks()
    assert [m.mark.id for m in marks] == [result.mark.id]
    entries = await world.audit.list_entries(
        AuditFilter(action=AuditAction.ATTENDANCE_REVIEWED), None, 10
    )
    assert [e.target for e in entries.entries] == [f"review:{review_id}"]
    assert entries.entries[0].details["mark_id"] == result.mark.id


async def test_confirming_applies_the_duplicate_window(world: World) -> None:
    review_id = await _grey(world)
    world.clock.moment += timedelta(minutes=1)
    await _decide(world, _face("p1", 0.95))

    result = await world.reviews.resolve(
        review_id, ReviewAction.CONFIRM, person=None, comment="seen", actor=ADMIN
    )

    assert result.mark is None
    assert result.review.result_code is ReasonCode.DUPLICATE_WINDOW
    assert "duplicate window" in result.reason


async def test_a_review_may_be_confirmed_as_someone_else(world: World) -> None:
    review_id = await _grey(world)

    result = await world.reviews.resolve(
        review_id, ReviewAction.CONFIRM, person="E2", comment="it was Bob", actor=ADMIN
    )

    assert result.mark is not None
    assert result.mark.person_id == "p2"
    assert result.review.confirmed_person_id == "p2"


async def test_rejecting_needs_a_comment_and_settles_once(world: World) -> None:
    review_id = await _grey(world)

    with pytest.raises(InvalidInput):
        await world.reviews.resolve(
            review_id, ReviewAction.REJECT, person=None, comment=" ", actor=ADMIN
        )
    rejected = await world.reviews.resolve(
        review_id, ReviewAction.REJECT, person=None, comment="not her", actor=ADMIN
    )
    with pytest.raises(Conflict):
        await world.reviews.resolve(
            review_id, ReviewAction.CONFIRM, person=None, comment=None, actor=ADMIN
        )

    assert rejected.review.state is ReviewState.REJECTED
    assert rejected.review.comment == "not her"
    assert await world.service.list_marks() == []
    pending = await world.reviews.list_reviews(
        ReviewFilter(state=ReviewState.PENDING), None, 10
    )
    assert pending.reviews == []


# --- corrections ---------------------------------------------------------------------


async def test_a_voided_mark_stays_stored_but_no_longer_counts(world: World) -> None:
    await _decide(world, _face("p1", 0.95))
    [row] = await world.service.list_marks()

    correction = await world.corrections.void_mark(row.mark.id, "wrong person", ADMIN)
    world.clock.moment += timedelta(minutes=1)
    after = await _decide(world, _face("p1", 0.95))

    assert correction.mark_id == row.mark.id
    assert after == [Outcome.MARKED]
    counted = await world.service.list_marks()
    everything = await world.service.page_marks(
        MarkFilter(include_voided=True), None, 10
    )
    new_mark = counted[0].mark
    assert [m.mark.id for m in counted] == [new_mark.id]
    assert new_mark.id != row.mark.id
    assert [(m.mark.id, m.mark.voided) for m in everything.rows] == [
        (row.mark.id, True),
        (new_mark.id, False),
    ]
    stored = await world.db.fetch_one(
        "SELECT * FROM attendance WHERE id = ?", (row.mark.id,)
    )
    assert stored is not None
    assert stored["kind"] == "check_in"
    with pytest.raises(Conflict):
        await world.corrections.void_mark(row.mark.id, "again", ADMIN)


async def test_an_added_mark_counts_flagged_as_manual(world: World) -> None:
    at = START - timedelta(minutes=30)

    correction, mark = await world.corrections.add_mark(
        "E1", MarkKind.CHECK_IN, at, None, "camera was down", ADMIN
    )

    assert mark.source is MarkSource.MANUAL
    assert mark.camera_id is None
    assert mark.similarity is None
    [row] = await world.service.list_marks()
    assert row.mark.id == mark.id == correction.mark_id
    entries = await world.audit.list_entries(
        AuditFilter(action=AuditAction.ATTENDANCE_CORRECTED), None, 10
    )
    assert entries.entries[0].details["comment"] == "camera was down"
    assert entries.entries[0].target == f"mark:{mark.id}"


async def test_corrections_need_a_comment_and_a_markable_person(world: World) -> None:
    world.people.stand_ins = {
        "p1": Person("p1", "E1", "Alice", None, PersonStatus.INACTIVE, START)
    }

    with pytest.raises(InvalidInput):
        await world.corrections.add_mark(
            "p2", MarkKind.CHECK_IN, START, None, "", ADMIN
        )
    with pytest.raises(Refused):
        await world.corrections.add_mark(
            "p1", MarkKind.CHECK_IN, START, None, "forgot", ADMIN
        )


# --- listings --------------------------------------------------------------------


async def test_decisions_are_listed_by_filter_with_a_cursor(world: World) -> None:
    for similarity in (0.95, 0.3, 0.3, 0.3):
        await _decide(world, _face("p1", similarity))
        world.clock.moment += timedelta(minutes=10)

    unknown = DecisionFilter(reason_code=ReasonCode.BELOW_UNKNOWN_THRESHOLD)
    first = await world.service.page_decisions(unknown, None, 2)
    rest = await world.service.page_decisions(unknown, first.next_cursor, 2)
    marked = await world.service.page_decisions(
        DecisionFilter(outcome=Outcome.MARKED, person="E1", day=START.date()), None, 10
    )
    other_day = await world.service.page_decisions(
        DecisionFilter(day=START.date() + timedelta(days=1)), None, 10
    )

    assert len(first.decisions) == 2
    assert first.next_cursor == first.decisions[-1].id
    assert len(rest.decisions) == 1
    assert rest.next_cursor is None
    assert [d.rule for d in marked.decisions] == [DecisionRule.MATCH_THRESHOLD]
    assert marked.decisions[0].mark is not None
    assert marked.people["p1"].employee_no == "E1"
    assert other_day.decisions == []


async def test_marks_are_listed_with_a_cursor(world: World) -> None:
    for _ in range(3):
        await _decide(world, _face("p1", 0.95))
        world.clock.moment += timedelta(minutes=10)

    first = await world.service.page_marks(MarkFilter(), None, 2)
    rest = await world.service.page_marks(MarkFilter(), first.next_cursor, 2)

    assert len(first.rows) == 2
    assert [r.mark.marked_at for r in rest.rows] == [START + timedelta(minutes=20)]
    assert rest.next_cursor is None


# --- the migration ------------------------------------------------------------------


async def test_marks_and_decisions_from_before_keep_their_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    _database_at_version(path, 4)
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.executescript(_OLD_ROWS)

    db = Database(path)
    await db.open()
    marks = await AttendanceRepository(db).query(AttendanceQuery())
    decisions = await db.fetch_all("SELECT reason_code FROM decisions ORDER BY id")
    await db.close()

    assert [(m.mark.id, m.mark.work_day, m.mark.source) for m in marks] == [
        (5, "2026-03-02", MarkSource.RECOGNITION)
    ]
    assert [r["reason_code"] for r in decisions] == [
        "marked",
        "below_unknown_threshold",
        "no_candidate",
        "quality_too_dark",
    ]


def _database_at_version(path: Path, version: int) -> None:
    """A file with the migrations up to ``version`` only, as an older release
    left it."""
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA foreign_keys = ON")
        for migration in migrations.available_migrations():
            if migration.version <= version:
                conn.executescript(f"BEGIN;\n{migration.sql}\nCOMMIT;")
        conn.execute(migrations._CREATE_TABLE)
        conn.executemany(
            "INSERT INTO schema_migrations VALUES (?, ?, 'then')",
            [
                (m.version, m.name)
                for m in migrations.available_migrations()
                if m.version <= version
            ],
        )
        conn.commit()


_OLD_ROWS = """
INSERT INTO people VALUES ('p1', 'E1', 'Alice', NULL, 'active', 't');
INSERT INTO cameras VALUES ('gate', 'Gate', 'entry', 't');
INSERT INTO decisions VALUES
  (1, 'f1', 'gate', 'marked', 'similarity 0.9 meets', 'p1', 'p1', 0.9,
   '2026-03-02T08:00:00.000000+00:00', '2026-03-02T08:00:01.000000+00:00'),
  (2, 'f2', 'gate', 'unknown', 'best similarity 0.2 is below the match threshold',
   NULL, 'p1', 0.2, '2026-03-02T08:00:00.000000+00:00', 't'),
  (3, 'f3', 'gate', 'unknown', 'no enrolled subject resembles the face',
   NULL, NULL, NULL, '2026-03-02T08:00:00.000000+00:00', 't'),
  (4, 'f4', 'gate', 'rejected', 'too_dark', NULL, NULL, NULL,
   '2026-03-02T08:00:00.000000+00:00', 't');
INSERT INTO attendance VALUES
  (5, 'p1', 'gate', 'check_in', '2026-03-02T08:00:00.000000+00:00', '2026-03-02',
   0.9, 1);
"""
