"""Storage client: recognition decisions, the marks they make, the reviews they queue.

Each public method is one unit of work; the ones that write do so in a single
transaction, so a frame's decisions, its marks, its reviews and its leaving
the queue are committed together or not at all. Marks read here already
carry whether a correction voided them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import TypeVar

import aiosqlite

from edge_agent.clients.storage import sync_records
from edge_agent.clients.storage.database import Database
from edge_agent.clients.storage.outbox import NewRecord, append_all
from edge_agent.clients.storage.rows import Filters, rowid
from edge_agent.clock import from_text, to_text
from edge_agent.models import (
    AttendanceRow,
    Decision,
    DecisionRule,
    Mark,
    MarkClass,
    MarkKind,
    MarkSource,
    Outcome,
    ReasonCode,
)

_Code = TypeVar("_Code", ReasonCode, DecisionRule)

# The outbox records a stored decision makes; the attendance service decides
# which, and they are written in the decision's own transaction.
EventBuilder = Callable[[Decision], Sequence[NewRecord]]
# The outbox records a mark made outside a frame (a review, a correction) makes.
MarkEvents = Callable[[Mark], Sequence[NewRecord]]

_INSERT_DECISION = """
INSERT INTO decisions (frame_id, camera_id, outcome, reason, person_id, subject,
                       similarity, captured_at, decided_at, reason_code, rule)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
_INSERT_MARK = """
INSERT INTO attendance (person_id, camera_id, kind, marked_at, local_day,
                        work_day, similarity, decision_id, source,
                        classification, shift)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
_INSERT_REVIEW = """
INSERT INTO reviews (decision_id, frame_id, camera_id, person_id, subject,
                     similarity, captured_at, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
"""
# Every read of marks goes through this, so a voided mark is always known.
MARK_COLUMNS = """
a.*, EXISTS (
    SELECT 1 FROM attendance_corrections AS c
    WHERE c.mark_id = a.id AND c.action = 'void'
) AS voided
"""
_SELECT_ATTENDANCE = f"""
SELECT {MARK_COLUMNS}, p.employee_no, p.name
FROM attendance AS a JOIN people AS p ON p.id = a.person_id
"""
_AFTER_MARK = """
(a.marked_at, a.id) > (SELECT marked_at, id FROM attendance WHERE id = ?)
"""
_NOT_VOIDED = """
NOT EXISTS (
    SELECT 1 FROM attendance_corrections AS c
    WHERE c.mark_id = a.id AND c.action = 'void'
)
"""
_DECIDE_FRAME = """
UPDATE frames SET state = 'decided', decided_at = ? WHERE id = ? AND state = 'queued'
"""
_FRAME_DECISIONS = """
SELECT d.*, r.id AS review_id
FROM decisions AS d LEFT JOIN reviews AS r ON r.decision_id = d.id
WHERE d.frame_id = ? ORDER BY d.id
"""
_SELECT_DECISIONS = """
SELECT d.*, r.id AS review_id
FROM decisions AS d LEFT JOIN reviews AS r ON r.decision_id = d.id
"""
_MARKS_OF_DECISIONS = f"""
SELECT {MARK_COLUMNS} FROM attendance AS a WHERE a.decision_id IN ({{marks}})
"""
_LAST_MARK = f"""
SELECT {MARK_COLUMNS} FROM attendance AS a
WHERE a.person_id = ? AND a.marked_at <= ? AND {_NOT_VOIDED}
ORDER BY a.marked_at DESC, a.id DESC LIMIT 1
"""
_FIRST_MARK_AFTER = f"""
SELECT {MARK_COLUMNS} FROM attendance AS a
WHERE a.person_id = ? AND a.marked_at > ? AND {_NOT_VOIDED}
ORDER BY a.marked_at, a.id LIMIT 1
"""
# Later than any stored time: to_text() always starts with a four-digit year.
_END_OF_TIME = "9999"
_MARKS_OF_WORK_DAY = f"""
SELECT {MARK_COLUMNS} FROM attendance AS a
WHERE a.work_day = ? AND {_NOT_VOIDED}
ORDER BY a.marked_at, a.id
"""
_GET_MARK = f"SELECT {MARK_COLUMNS} FROM attendance AS a WHERE a.id = ?"
_OPEN_REVIEW = """
SELECT captured_at FROM reviews
WHERE person_id = ? AND camera_id = ? AND state = 'pending'
ORDER BY captured_at DESC LIMIT 1
"""


@dataclass(frozen=True, slots=True)
class NewMark:
    """A mark not yet stored. ``decision_id`` is filled in when its decision is
    stored in the same transaction."""

    person_id: str
    camera_id: str | None
    kind: MarkKind
    marked_at: datetime
    local_day: str
    work_day: str
    similarity: float | None
    classification: MarkClass = MarkClass.UNSCHEDULED
    shift: str | None = None
    source: MarkSource = MarkSource.RECOGNITION
    decision_id: int | None = None

    def stored_as(self, mark_id: int) -> Mark:
        """The mark this becomes once stored under ``mark_id``."""
        return Mark(
            id=mark_id,
            person_id=self.person_id,
            camera_id=self.camera_id,
            kind=self.kind,
            marked_at=self.marked_at,
            local_day=self.local_day,
            similarity=self.similarity,
            decision_id=self.decision_id,
            work_day=self.work_day,
            classification=self.classification,
            source=self.source,
            shift=self.shift,
        )


@dataclass(frozen=True, slots=True)
class NewDecision:
    """A decision not yet stored, the mark it makes and whether it queues a
    review."""

    frame_id: str
    camera_id: str
    outcome: Outcome
    reason: str
    person_id: str | None
    subject: str | None
    similarity: float | None
    captured_at: datetime
    decided_at: datetime
    reason_code: ReasonCode = ReasonCode.UNCLASSIFIED
    rule: DecisionRule = DecisionRule.LEGACY
    mark: NewMark | None = None
    queue_review: bool = False


@dataclass(frozen=True, slots=True)
class FrameDecisionsToStore:
    frame_id: str
    decided_at: datetime
    decisions: list[NewDecision]


@dataclass(frozen=True, slots=True)
class AttendanceQuery:
    """Which marks a listing wants: ``day`` is the site-local calendar day;
    ``after_id`` the last mark of the previous page."""

    day: date | None = None
    person_id: str | None = None
    camera_id: str | None = None
    limit: int = 1000
    after_id: int | None = None
    include_voided: bool = False


@dataclass(frozen=True, slots=True)
class DecisionQuery:
    """Which decisions a listing wants; ``since``/``until`` bound the capture
    time (inclusive, exclusive); ``after_id`` is the previous page's last."""

    since: datetime | None = None
    until: datetime | None = None
    camera_id: str | None = None
    person_id: str | None = None
    outcome: Outcome | None = None
    reason_code: ReasonCode | None = None
    after_id: int = 0
    limit: int = 100


class AttendanceRepository:
    def __init__(self, db: Database, *, ship_decisions: bool = False) -> None:
        """``ship_decisions``: every decision also goes to the ``decisions``
        sync stream (marks always go to ``attendance``)."""
        self._db = db
        self._ship_decisions = ship_decisions

    async def last_mark(
        self, person_id: str, *, before: datetime | None = None
    ) -> Mark | None:
        """The person's latest mark that still counts (voided ones do not), or
        the latest at or before ``before``."""
        until = to_text(before) if before is not None else _END_OF_TIME
        row = await self._db.fetch_one(_LAST_MARK, (person_id, until))
        return None if row is None else mark_from_row(row)

    async def nearest_mark(self, person_id: str, moment: datetime) -> Mark | None:
        """The person's counted mark closest in time to ``moment``."""
        earlier = await self.last_mark(person_id, before=moment)
        row = await self._db.fetch_one(_FIRST_MARK_AFTER, (person_id, to_text(moment)))
        later = None if row is None else mark_from_row(row)
        candidates = [m for m in (earlier, later) if m is not None]
        return min(candidates, key=lambda m: abs(m.marked_at - moment), default=None)

    async def get_mark(self, mark_id: int) -> Mark | None:
        row = await self._db.fetch_one(_GET_MARK, (mark_id,))
        return None if row is None else mark_from_row(row)

    async def latest_open_review(
        self, person_id: str, camera_id: str
    ) -> datetime | None:
        """When the person's latest review still pending on this camera was
        captured, if there is one."""
        row = await self._db.fetch_one(_OPEN_REVIEW, (person_id, camera_id))
        return None if row is None else from_text(row["captured_at"])

    async def record(
        self,
        frames: list[FrameDecisionsToStore],
        events: EventBuilder | None = None,
    ) -> dict[str, list[Decision]]:
        """Store the decisions of several frames, their marks and reviews, and
        the outbox records ``events`` makes of each decision, in one commit.

        Each frame leaves the queue in the same transaction; a frame that is no
        longer queued (already decided) keeps its earlier decisions, so a frame
        processed twice is still decided once.
        """
        stored: dict[str, list[Decision]] = {}
        outgoing: list[NewRecord] = []
        async with self._db.transaction() as conn:
            for frame in frames:
                if await _leave_queue(conn, frame):
                    stored[frame.frame_id] = await self._store_frame(
                        conn, frame, events, outgoing
                    )
            # Appended together: one head update per stream for the batch,
            # rather than one per record while frame commits wait on the lock.
            await append_all(conn, outgoing)
        return stored

    async def _store_frame(
        self,
        conn: aiosqlite.Connection,
        frame: FrameDecisionsToStore,
        events: EventBuilder | None,
        outgoing: list[NewRecord],
    ) -> list[Decision]:
        """Store the frame's decisions; add the outbox records they make to
        ``outgoing``, in the order they are appended."""
        decisions = []
        for new in frame.decisions:
            decision, mark_records = await _insert_decision(conn, new)
            decisions.append(decision)
            outgoing.extend(mark_records)
        if self._ship_decisions:
            outgoing.extend(sync_records.decision_record(d) for d in decisions)
        if events is not None:
            outgoing.extend(record for d in decisions for record in events(d))
        return decisions

    async def query(self, query: AttendanceQuery) -> list[AttendanceRow]:
        """Marks in time order (then id), after ``query.after_id`` if given."""
        filters = _attendance_filters(query)
        where = filters.where()
        sql = f"{_SELECT_ATTENDANCE}{where} ORDER BY a.marked_at, a.id LIMIT ?"
        rows = await self._db.fetch_all(sql, (*filters.params, query.limit))
        return [
            AttendanceRow(mark_from_row(r), r["employee_no"], r["name"]) for r in rows
        ]

    async def marks_counting_for(self, work_day: date) -> list[Mark]:
        """Every mark that counts for ``work_day``, voided ones left out."""
        rows = await self._db.fetch_all(_MARKS_OF_WORK_DAY, (work_day.isoformat(),))
        return [mark_from_row(row) for row in rows]

    async def list_decisions(self, frame_id: str) -> list[Decision]:
        """A frame's decisions, each with the mark it made, if any."""
        rows = await self._db.fetch_all(_FRAME_DECISIONS, (frame_id,))
        return await self._with_marks(rows)

    async def page_decisions(self, query: DecisionQuery) -> list[Decision]:
        """Decisions matching ``query`` after ``query.after_id``, by id."""
        filters = _decision_filters(query)
        sql = f"{_SELECT_DECISIONS}{filters.where()} ORDER BY d.id LIMIT ?"
        rows = await self._db.fetch_all(sql, (*filters.params, query.limit))
        return await self._with_marks(rows)

    async def _with_marks(self, rows: list[sqlite3.Row]) -> list[Decision]:
        ids = [row["id"] for row in rows]
        marks: dict[int, Mark] = {}
        if ids:
            sql = _MARKS_OF_DECISIONS.format(marks=", ".join("?" * len(ids)))
            for row in await self._db.fetch_all(sql, tuple(ids)):
                marks[row["decision_id"]] = mark_from_row(row)
        return [decision_from_row(row, marks.get(row["id"])) for row in rows]


async def insert_mark(
    conn: aiosqlite.Connection, new: NewMark, events: MarkEvents | None = None
) -> Mark:
    """Store one mark inside the caller's transaction, with its sync record and
    the outbox records ``events`` makes of it."""
    mark, record = await _store_mark(conn, new)
    await append_all(conn, [record, *(events(mark) if events is not None else ())])
    return mark


async def _store_mark(
    conn: aiosqlite.Connection, new: NewMark
) -> tuple[Mark, NewRecord]:
    """Store one mark; return it with its sync record, not yet appended."""
    cursor = await conn.execute(
        _INSERT_MARK,
        (
            new.person_id,
            new.camera_id,
            new.kind.value,
            to_text(new.marked_at),
            new.local_day,
            new.work_day,
            new.similarity,
            new.decision_id,
            new.source.value,
            new.classification.value,
            new.shift,
        ),
    )
    mark = new.stored_as(rowid(cursor))
    return mark, await sync_records.mark_record(conn, mark)


async def _leave_queue(
    conn: aiosqlite.Connection, frame: FrameDecisionsToStore
) -> bool:
    cursor = await conn.execute(
        _DECIDE_FRAME, (to_text(frame.decided_at), frame.frame_id)
    )
    return cursor.rowcount == 1


async def _insert_decision(
    conn: aiosqlite.Connection, new: NewDecision
) -> tuple[Decision, list[NewRecord]]:
    """Store one decision with its mark and review; return it with the mark's
    sync record (none without a mark), not yet appended."""
    cursor = await conn.execute(
        _INSERT_DECISION,
        (
            new.frame_id,
            new.camera_id,
            new.outcome.value,
            new.reason,
            new.person_id,
            new.subject,
            new.similarity,
            to_text(new.captured_at),
            to_text(new.decided_at),
            new.reason_code.value,
            new.rule.value,
        ),
    )
    decision_id = rowid(cursor)

    mark: Mark | None = None
    records: list[NewRecord] = []
    if new.mark is not None:
        linked = replace(new.mark, decision_id=decision_id)
        mark, record = await _store_mark(conn, linked)
        records.append(record)
    review_id = None
    if new.queue_review:
        review_id = await _insert_review(conn, new, decision_id)
    decision = Decision(
        id=decision_id,
        frame_id=new.frame_id,
        camera_id=new.camera_id,
        outcome=new.outcome,
        reason=new.reason,
        person_id=new.person_id,
        subject=new.subject,
        similarity=new.similarity,
        decided_at=new.decided_at,
        captured_at=new.captured_at,
        mark=mark,
        reason_code=new.reason_code,
        rule=new.rule,
        review_id=review_id,
    )
    return decision, records


async def _insert_review(
    conn: aiosqlite.Connection, new: NewDecision, decision_id: int
) -> int:
    if new.similarity is None:
        raise ValueError("a review needs the similarity it doubts")
    cursor = await conn.execute(
        _INSERT_REVIEW,
        (
            decision_id,
            new.frame_id,
            new.camera_id,
            new.person_id,
            new.subject,
            new.similarity,
            to_text(new.captured_at),
            to_text(new.decided_at),
        ),
    )
    return rowid(cursor)


def _attendance_filters(query: AttendanceQuery) -> Filters:
    filters = Filters()
    filters.equal("a.local_day", query.day.isoformat() if query.day else None)
    filters.equal("a.person_id", query.person_id)
    filters.equal("a.camera_id", query.camera_id)
    if query.after_id is not None:
        filters.add(_AFTER_MARK, query.after_id)
    if not query.include_voided:
        filters.add(_NOT_VOIDED)
    return filters


def _decision_filters(query: DecisionQuery) -> Filters:
    filters = Filters("d.id > ?", params=(query.after_id,))
    filters.within("d.captured_at", query.since, query.until)
    filters.equal("d.camera_id", query.camera_id)
    filters.equal("d.person_id", query.person_id)
    filters.equal("d.outcome", query.outcome.value if query.outcome else None)
    filters.equal(
        "d.reason_code", query.reason_code.value if query.reason_code else None
    )
    return filters


def mark_from_row(row: sqlite3.Row) -> Mark:
    return Mark(
        id=row["id"],
        person_id=row["person_id"],
        camera_id=row["camera_id"],
        kind=MarkKind(row["kind"]),
        marked_at=from_text(row["marked_at"]),
        local_day=row["local_day"],
        similarity=row["similarity"],
        decision_id=row["decision_id"],
        work_day=row["work_day"],
        classification=MarkClass(row["classification"]),
        source=MarkSource(row["source"]),
        shift=row["shift"],
        voided=bool(row["voided"]),
    )


def decision_from_row(row: sqlite3.Row, mark: Mark | None = None) -> Decision:
    return Decision(
        id=row["id"],
        frame_id=row["frame_id"],
        camera_id=row["camera_id"],
        outcome=Outcome(row["outcome"]),
        reason=row["reason"],
        person_id=row["person_id"],
        subject=row["subject"],
        similarity=row["similarity"],
        decided_at=from_text(row["decided_at"]),
        captured_at=from_text(row["captured_at"]),
        mark=mark,
        reason_code=_known(ReasonCode, row["reason_code"], ReasonCode.UNCLASSIFIED),
        rule=_known(DecisionRule, row["rule"], DecisionRule.LEGACY),
        review_id=row["review_id"],
    )


def _known(kind: type[_Code], value: str, fallback: _Code) -> _Code:
    """A stored code this version knows, else ``fallback`` (a later version's
    code read by an older one must not make the whole listing fail)."""
    try:
        return kind(value)
    except ValueError:
        return fallback
