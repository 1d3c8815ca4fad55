"""Storage client: named shifts and the history of who works which."""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from datetime import date, time, timedelta

from edge_agent.clients.storage.database import Database
from edge_agent.clock import from_text, to_text
from edge_agent.errors import Conflict, NotFound
from edge_agent.models import Shift, ShiftAssignment

_INSERT_SHIFT = """
INSERT INTO shifts (name, days, start_time, end_time, checkin_before_s,
                    checkout_after_s, late_grace_s, early_exit_grace_s,
                    half_day_below_s, absent_below_s, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
_GET_SHIFT = "SELECT * FROM shifts WHERE name = ?"
_ALL_SHIFTS = "SELECT * FROM shifts ORDER BY name"
_INSERT_ASSIGNMENT = """
INSERT INTO person_shifts (person_id, shift, effective_from, assigned_at,
                           assigned_by)
VALUES (?, ?, ?, ?, ?)
"""
_SELECT_ASSIGNMENTS = """
SELECT ps.person_id, ps.effective_from, ps.assigned_at, ps.assigned_by,
       s.name, s.days, s.start_time, s.end_time, s.checkin_before_s,
       s.checkout_after_s, s.late_grace_s, s.early_exit_grace_s,
       s.half_day_below_s, s.absent_below_s, s.created_at
FROM person_shifts AS ps LEFT JOIN shifts AS s ON s.name = ps.shift
"""
_ASSIGNMENTS_OF = f"""
{_SELECT_ASSIGNMENTS} WHERE ps.person_id = ? ORDER BY ps.effective_from, ps.id
"""
_ALL_ASSIGNMENTS = f"""
{_SELECT_ASSIGNMENTS} ORDER BY ps.person_id, ps.effective_from, ps.id
"""


class ShiftRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, shift: Shift) -> None:
        try:
            async with self._db.transaction() as conn:
                await conn.execute(_INSERT_SHIFT, _shift_row(shift))
        except sqlite3.IntegrityError as exc:
            raise Conflict(f"shift {shift.name!r} already exists") from exc

    async def get(self, name: str) -> Shift:
        row = await self._db.fetch_one(_GET_SHIFT, (name,))
        if row is None:
            raise NotFound(f"no shift named {name!r}")
        return _shift(row)

    async def all(self) -> list[Shift]:
        return [_shift(row) for row in await self._db.fetch_all(_ALL_SHIFTS)]

    async def assign(self, assignment: ShiftAssignment) -> None:
        shift = assignment.shift.name if assignment.shift is not None else None
        row = (
            assignment.person_id,
            shift,
            assignment.effective_from.isoformat(),
            to_text(assignment.assigned_at),
            assignment.assigned_by,
        )
        async with self._db.transaction() as conn:
            await conn.execute(_INSERT_ASSIGNMENT, row)

    async def schedule(self, person_id: str) -> list[ShiftAssignment]:
        """The person's assignments, oldest first (later ones supersede)."""
        rows = await self._db.fetch_all(_ASSIGNMENTS_OF, (person_id,))
        return [_assignment(row) for row in rows]

    async def schedules(self) -> dict[str, list[ShiftAssignment]]:
        """Every person's assignments, oldest first, by person id."""
        found: dict[str, list[ShiftAssignment]] = defaultdict(list)
        for row in await self._db.fetch_all(_ALL_ASSIGNMENTS):
            found[row["person_id"]].append(_assignment(row))
        return dict(found)


def _shift_row(shift: Shift) -> tuple[object, ...]:
    return (
        shift.name,
        ",".join(str(d) for d in sorted(shift.days)),
        shift.start.isoformat(),
        shift.end.isoformat(),
        _seconds(shift.checkin_before),
        _seconds(shift.checkout_after),
        _seconds(shift.late_grace),
        _seconds(shift.early_exit_grace),
        _seconds(shift.half_day_below),
        _seconds(shift.absent_below),
        to_text(shift.created_at),
    )


def _seconds(duration: timedelta) -> int:
    return int(duration.total_seconds())


def _shift(row: sqlite3.Row) -> Shift:
    return Shift(
        name=row["name"],
        days=tuple(int(d) for d in row["days"].split(",")),
        start=time.fromisoformat(row["start_time"]),
        end=time.fromisoformat(row["end_time"]),
        checkin_before=timedelta(seconds=row["checkin_before_s"]),
        checkout_after=timedelta(seconds=row["checkout_after_s"]),
        late_grace=timedelta(seconds=row["late_grace_s"]),
        early_exit_grace=timedelta(seconds=row["early_exit_grace_s"]),
        half_day_below=timedelta(seconds=row["half_day_below_s"]),
        absent_below=timedelta(seconds=row["absent_below_s"]),
        created_at=from_text(row["created_at"]),
    )


def _assignment(row: sqlite3.Row) -> ShiftAssignment:
    return ShiftAssignment(
        person_id=row["person_id"],
        shift=_shift(row) if row["name"] is not None else None,
        effective_from=date.fromisoformat(row["effective_from"]),
        assigned_at=from_text(row["assigned_at"]),
        assigned_by=row["assigned_by"],
    )
