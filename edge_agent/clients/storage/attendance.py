"""Storage client: recognition decisions and the attendance marks they make.

Each public method is one unit of work; the ones that write do so in a single
transaction, so a frame's decisions, its marks and its leaving the queue are
committed together or not at all.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import date, datetime

import aiosqlite

from edge_agent.clients.storage.database import Database
from edge_agent.clock import from_text, to_text
from edge_agent.models import AttendanceRow, Decision, Mark, MarkKind, Outcome

_INSERT_DECISION = """
INSERT INTO decisions (frame_id, camera_id, outcome, reason, person_id, subject,
                       similarity, captured_at, decided_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
_INSERT_MARK = """
INSERT INTO attendance (person_id, camera_id, kind, marked_at, local_day,
                        similarity, decision_id)
VALUES (?, ?, ?, ?, ?, ?, ?)
"""
_SELECT_ATTENDANCE = """
SELECT a.*, p.employee_no, p.name
FROM attendance AS a JOIN people AS p ON p.id = a.person_id
"""
_DECIDE_FRAME = """
UPDATE frames SET state = 'decided', decided_at = ? WHERE id = ? AND state = 'queued'
"""
_FRAME_DECISIONS = "SELECT * FROM decisions WHERE frame_id = ? ORDER BY id"
_FRAME_MARKS = """
SELECT a.* FROM attendance AS a JOIN decisions AS d ON d.id = a.decision_id
WHERE d.frame_id = ?
"""
_LAST_MARK = """
SELECT * FROM attendance WHERE person_id = ? ORDER BY marked_at DESC, id DESC LIMIT 1
"""


@dataclass(frozen=True, slots=True)
class NewDecision:
    """A decision not yet stored, and the mark it makes, if any."""

    frame_id: str
    camera_id: str
    outcome: Outcome
    reason: str
    person_id: str | None
    subject: str | None
    similarity: float | None
    captured_at: datetime
    decided_at: datetime
    mark_kind: MarkKind | None = None
    local_day: str | None = None


@dataclass(frozen=True, slots=True)
class FrameDecisionsToStore:
    frame_id: str
    decided_at: datetime
    decisions: list[NewDecision]


@dataclass(frozen=True, slots=True)
class AttendanceQuery:
    day: date | None = None
    person_id: str | None = None
    camera_id: str | None = None
    limit: int = 1000


class AttendanceRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def last_mark(self, person_id: str) -> Mark | None:
        row = await self._db.fetch_one(_LAST_MARK, (person_id,))
        return None if row is None else _mark(row)

    async def record(
        self, frames: list[FrameDecisionsToStore]
    ) -> dict[str, list[Decision]]:
        """Store the decisions of several frames, and their marks, in one commit.

        Each frame leaves the queue in the same transaction; a frame that is no
        longer queued (already decided) keeps its earlier decisions, so a frame
        processed twice is still decided once.
        """
        stored: dict[str, list[Decision]] = {}
        async with self._db.transaction() as conn:
            for frame in frames:
                if not await _leave_queue(conn, frame):
                    continue
                stored[frame.frame_id] = [
                    await _insert_decision(conn, new) for new in frame.decisions
                ]
        return stored

    async def query(self, query: AttendanceQuery) -> list[AttendanceRow]:
        clauses, params = _attendance_filters(query)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"{_SELECT_ATTENDANCE}{where} ORDER BY a.marked_at, a.id LIMIT ?"
        rows = await self._db.fetch_all(sql, (*params, query.limit))
        return [AttendanceRow(_mark(r), r["employee_no"], r["name"]) for r in rows]

    async def list_decisions(self, frame_id: str) -> list[Decision]:
        """A frame's decisions, each with the mark it made, if any."""
        decisions = await self._db.fetch_all(_FRAME_DECISIONS, (frame_id,))
        marks = await self._db.fetch_all(_FRAME_MARKS, (frame_id,))
        by_decision = {row["decision_id"]: _mark(row) for row in marks}
        return [_decision(row, by_decision.get(row["id"])) for row in decisions]


async def _leave_queue(
    conn: aiosqlite.Connection, frame: FrameDecisionsToStore
) -> bool:
    cursor = await conn.execute(
        _DECIDE_FRAME, (to_text(frame.decided_at), frame.frame_id)
    )
    return cursor.rowcount == 1


async def _insert_decision(conn: aiosqlite.Connection, new: NewDecision) -> Decision:
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
        ),
    )
    decision_id = _rowid(cursor)

    mark = None
    if new.mark_kind is not None:
        mark = await _insert_mark(conn, new, decision_id)
    return Decision(
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
    )


async def _insert_mark(
    conn: aiosqlite.Connection, new: NewDecision, decision_id: int
) -> Mark:
    if new.person_id is None or new.similarity is None or new.local_day is None:
        raise ValueError("a mark needs a person, a similarity and a local day")
    kind = new.mark_kind or MarkKind.CHECK_IN
    cursor = await conn.execute(
        _INSERT_MARK,
        (
            new.person_id,
            new.camera_id,
            kind.value,
            to_text(new.captured_at),
            new.local_day,
            new.similarity,
            decision_id,
        ),
    )
    return Mark(
        id=_rowid(cursor),
        person_id=new.person_id,
        camera_id=new.camera_id,
        kind=kind,
        marked_at=new.captured_at,
        local_day=new.local_day,
        similarity=new.similarity,
        decision_id=decision_id,
    )


def _attendance_filters(query: AttendanceQuery) -> tuple[list[str], list[str]]:
    clauses: list[str] = []
    params: list[str] = []
    if query.day is not None:
        clauses.append("a.local_day = ?")
        params.append(query.day.isoformat())
    if query.person_id is not None:
        clauses.append("a.person_id = ?")
        params.append(query.person_id)
    if query.camera_id is not None:
        clauses.append("a.camera_id = ?")
        params.append(query.camera_id)
    return clauses, params


def _rowid(cursor: aiosqlite.Cursor) -> int:
    if cursor.lastrowid is None:
        raise RuntimeError("SQLite returned no row id for an insert")
    return cursor.lastrowid


def _mark(row: sqlite3.Row) -> Mark:
    return Mark(
        id=row["id"],
        person_id=row["person_id"],
        camera_id=row["camera_id"],
        kind=MarkKind(row["kind"]),
        marked_at=from_text(row["marked_at"]),
        local_day=row["local_day"],
        similarity=row["similarity"],
        decision_id=row["decision_id"],
    )


def _decision(row: sqlite3.Row, mark: Mark | None = None) -> Decision:
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
    )
