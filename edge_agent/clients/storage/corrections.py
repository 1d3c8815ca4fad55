"""Storage client: admins' corrections of attendance, which never rewrite a mark.

Adding a missed mark stores a manual mark and its correction in one
transaction; voiding stores a correction naming the mark, and the mark row is
left exactly as it was. At most one void per mark (a unique index).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime

import aiosqlite

from edge_agent.clients.storage.attendance import MarkEvents, NewMark, insert_mark
from edge_agent.clients.storage.database import Database
from edge_agent.clients.storage.outbox import append
from edge_agent.clients.storage.rows import Filters, rowid
from edge_agent.clients.storage.sync_records import correction_record
from edge_agent.clock import from_text, to_text
from edge_agent.errors import Conflict
from edge_agent.models import Correction, CorrectionAction, Mark

_INSERT_CORRECTION = """
INSERT INTO attendance_corrections (action, mark_id, person_id, comment, actor,
                                    created_at)
VALUES (?, ?, ?, ?, ?, ?)
"""
_SELECT_CORRECTIONS = "SELECT * FROM attendance_corrections"


@dataclass(frozen=True, slots=True)
class CorrectionNote:
    """Who corrects, when, and why."""

    comment: str
    actor: str
    at: datetime


class CorrectionRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add_mark(
        self, mark: NewMark, note: CorrectionNote, events: MarkEvents | None = None
    ) -> tuple[Correction, Mark]:
        """Store a manual mark and the correction that adds it, in one commit."""
        async with self._db.transaction() as conn:
            stored = await insert_mark(conn, mark, events)
            correction = await _insert(
                conn, CorrectionAction.ADD, stored.id, mark.person_id, note
            )
        return correction, stored

    async def void(self, mark: Mark, note: CorrectionNote) -> Correction:
        """Store that ``mark`` no longer counts; :class:`Conflict` if it is
        voided already."""
        try:
            async with self._db.transaction() as conn:
                return await _insert(
                    conn, CorrectionAction.VOID, mark.id, mark.person_id, note
                )
        except sqlite3.IntegrityError as exc:
            raise Conflict(f"mark {mark.id} is already voided") from exc

    async def page(
        self, person_id: str | None, after_id: int, limit: int
    ) -> list[Correction]:
        """Corrections after ``after_id``, by id, of one person or everyone."""
        filters = Filters("id > ?", params=(after_id,))
        filters.equal("person_id", person_id)
        sql = f"{_SELECT_CORRECTIONS}{filters.where()} ORDER BY id LIMIT ?"
        rows = await self._db.fetch_all(sql, (*filters.params, limit))
        return [_correction(row) for row in rows]


async def _insert(
    conn: aiosqlite.Connection,
    action: CorrectionAction,
    mark_id: int,
    person_id: str,
    note: CorrectionNote,
) -> Correction:
    cursor = await conn.execute(
        _INSERT_CORRECTION,
        (action.value, mark_id, person_id, note.comment, note.actor, to_text(note.at)),
    )
    correction = Correction(
        id=rowid(cursor),
        action=action,
        mark_id=mark_id,
        person_id=person_id,
        comment=note.comment,
        actor=note.actor,
        created_at=note.at,
    )
    await append(conn, correction_record(correction))
    return correction


def _correction(row: sqlite3.Row) -> Correction:
    return Correction(
        id=row["id"],
        action=CorrectionAction(row["action"]),
        mark_id=row["mark_id"],
        person_id=row["person_id"],
        comment=row["comment"],
        actor=row["actor"],
        created_at=from_text(row["created_at"]),
    )
