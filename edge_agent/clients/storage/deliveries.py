"""Storage client: how far each outbox consumer has got, and what it gave up on.

A consumer is anything that reads one outbox stream after its own cursor: an
event sink (``sink:webhook:vms``, ``sink:mqtt``) or the sync of a stream
(``sync:attendance``). Its cursor is the last ``seq`` it is done with, so a
restart resumes right after it. A record it could not deliver becomes a dead
letter; giving up on it and moving the cursor past it happen in one
transaction, so a crash can neither lose the record nor deliver it twice as new.

A dead letter's ``state`` goes ``dead`` -> ``redrive`` (an admin asked for
another try) -> ``redelivered``, or back to ``dead`` when the retry fails too.
"""

from __future__ import annotations

import enum
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from edge_agent.clients.storage.database import Database
from edge_agent.clients.storage.outbox import NewRecord, append
from edge_agent.clients.storage.rows import Filters, optional_time
from edge_agent.clock import from_text, to_text

# Long error texts (an HTML error page, a stack of causes) are cut to this.
MAX_ERROR_CHARS = 500

_CREATE_CURSOR = """
INSERT INTO outbox_cursors (consumer, stream, updated_at) VALUES (?, ?, ?)
ON CONFLICT (consumer) DO NOTHING
"""
_GET_CURSOR = "SELECT * FROM outbox_cursors WHERE consumer = ?"
_CURSORS = """
SELECT * FROM outbox_cursors WHERE consumer LIKE ? ESCAPE '\\' ORDER BY consumer
"""
_ADVANCE = """
UPDATE outbox_cursors
SET position = MAX(position, ?), attempts = 0, last_error = NULL, updated_at = ?
WHERE consumer = ?
"""
_ADVANCE_DELIVERED = """
UPDATE outbox_cursors
SET position = MAX(position, ?), attempts = 0, last_error = NULL,
    last_success_at = ?, updated_at = ?
WHERE consumer = ?
"""
_RECORD_FAILURE = """
UPDATE outbox_cursors SET attempts = ?, last_error = ?, updated_at = ?
WHERE consumer = ?
"""
_NOTE_ERROR = """
UPDATE outbox_cursors SET last_error = ?, updated_at = ? WHERE consumer = ?
"""
_BURY = """
INSERT INTO outbox_dead_letters (consumer, stream, seq, attempts, reason, dead_at,
                                 state, updated_at)
VALUES (?, ?, ?, ?, ?, ?, 'dead', ?)
ON CONFLICT (consumer, seq) DO UPDATE SET
    attempts = excluded.attempts, reason = excluded.reason,
    dead_at = excluded.dead_at, state = 'dead', updated_at = excluded.updated_at
"""
_BURY_AGAIN = """
UPDATE outbox_dead_letters
SET state = 'dead', attempts = ?, reason = ?, dead_at = ?, updated_at = ?
WHERE consumer = ? AND seq = ?
"""
_REDRIVE = """
UPDATE outbox_dead_letters SET state = 'redrive', updated_at = ?
WHERE consumer = ? AND state = 'dead'
"""
_REDRIVE_ROWS = """
SELECT * FROM outbox_dead_letters WHERE consumer = ? AND state = 'redrive'
ORDER BY seq LIMIT ?
"""
_REDELIVERED = """
UPDATE outbox_dead_letters SET state = 'redelivered', updated_at = ?
WHERE consumer = ? AND seq = ?
"""
_SETTLE_REDRIVEN = """
UPDATE outbox_dead_letters SET state = 'redelivered', updated_at = ?
WHERE consumer = ? AND state = 'redrive' AND seq <= ?
"""
_REWIND = """
UPDATE outbox_cursors SET position = ?, attempts = 0, updated_at = ?
WHERE consumer = ?
"""
_STOP = """
UPDATE outbox_cursors SET stopped_reason = ?, last_error = ?, updated_at = ?
WHERE consumer = ?
"""
_RESUME = """
UPDATE outbox_cursors
SET stopped_reason = NULL, last_error = NULL, attempts = 0, updated_at = ?
WHERE consumer = ?
"""
_OLDEST_KEPT = """
SELECT MIN(seq) FROM outbox_dead_letters
WHERE consumer = ? AND state IN ('dead', 'redrive')
"""
_SELECT_DEAD = "SELECT * FROM outbox_dead_letters"
_COUNT_DEAD = """
SELECT consumer, COUNT(*) AS dead FROM outbox_dead_letters
WHERE state = 'dead' GROUP BY consumer
"""


class DeadLetterState(enum.StrEnum):
    DEAD = "dead"
    REDRIVE = "redrive"
    REDELIVERED = "redelivered"


@dataclass(frozen=True, slots=True)
class Cursor:
    """A consumer's progress: ``position`` is the last seq it is done with;
    ``attempts`` and ``last_error`` describe the record after it."""

    consumer: str
    stream: str
    position: int
    attempts: int
    last_error: str | None
    last_success_at: datetime | None
    updated_at: datetime
    # Set when the consumer was stopped for an admin to look at.
    stopped_reason: str | None = None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    consumer: str
    stream: str
    seq: int
    attempts: int
    reason: str
    dead_at: datetime
    state: DeadLetterState
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class DeadLetterQuery:
    """Which dead letters a listing wants, by seq after ``after_seq``."""

    consumer: str | None = None
    state: DeadLetterState | None = None
    after_seq: int = 0
    limit: int = 100


class DeliveryRepository:
    """Cursors and dead letters of every outbox consumer."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def cursor(self, consumer: str, stream: str, now: datetime) -> Cursor:
        """The consumer's cursor, created at position 0 on first use."""
        # Read first: workers ask at every poll, and only the first ask needs
        # the writer lock that frame commits wait on too.
        found = await self.find_cursor(consumer)
        if found is not None:
            return found
        async with self._db.transaction() as conn:
            await conn.execute(_CREATE_CURSOR, (consumer, stream, to_text(now)))
            async with conn.execute(_GET_CURSOR, (consumer,)) as rows:
                row = await rows.fetchone()
        if row is None:
            raise RuntimeError(f"cursor {consumer} vanished after its creation")
        return _cursor_from_row(row)

    async def find_cursor(self, consumer: str) -> Cursor | None:
        row = await self._db.fetch_one(_GET_CURSOR, (consumer,))
        return None if row is None else _cursor_from_row(row)

    async def cursors(self, prefix: str = "") -> list[Cursor]:
        """Every cursor whose consumer name starts with ``prefix``."""
        pattern = prefix.replace("%", r"\%").replace("_", r"\_") + "%"
        rows = await self._db.fetch_all(_CURSORS, (pattern,))
        return [_cursor_from_row(row) for row in rows]

    async def advance(
        self, consumer: str, position: int, now: datetime, *, delivered: bool
    ) -> None:
        """Move the cursor to ``position`` (never backwards) and clear its
        failures; ``delivered`` records a success time as well (a cursor moved
        only over records the consumer does not want is not a success)."""
        at = to_text(now)
        async with self._db.transaction() as conn:
            if delivered:
                await conn.execute(_ADVANCE_DELIVERED, (position, at, at, consumer))
            else:
                await conn.execute(_ADVANCE, (position, at, consumer))

    async def record_failure(
        self, consumer: str, attempts: int, error: str, now: datetime
    ) -> None:
        """Count a failed attempt at the record after the cursor."""
        async with self._db.transaction() as conn:
            await conn.execute(
                _RECORD_FAILURE, (attempts, _cut(error), to_text(now), consumer)
            )

    async def note_error(self, consumer: str, error: str, now: datetime) -> None:
        """Keep ``error`` as the consumer's last, without counting an attempt at
        the record after the cursor (a re-driven record failed)."""
        async with self._db.transaction() as conn:
            await conn.execute(_NOTE_ERROR, (_cut(error), to_text(now), consumer))

    async def dead_letter(
        self, cursor: Cursor, seq: int, attempts: int, reason: str, now: datetime
    ) -> None:
        """Give up on ``seq`` and move the cursor past it, in one transaction."""
        at = to_text(now)
        row = (cursor.consumer, cursor.stream, seq, attempts, _cut(reason), at, at)
        async with self._db.transaction() as conn:
            await conn.execute(_BURY, row)
            await conn.execute(_ADVANCE, (seq, at, cursor.consumer))
            await conn.execute(_NOTE_ERROR, (_cut(reason), at, cursor.consumer))

    async def dead_again(
        self, consumer: str, seq: int, attempts: int, reason: str, now: datetime
    ) -> None:
        """A re-driven record failed again: it is dead once more."""
        at = to_text(now)
        async with self._db.transaction() as conn:
            await conn.execute(
                _BURY_AGAIN, (attempts, _cut(reason), at, at, consumer, seq)
            )

    async def dead_letters(self, query: DeadLetterQuery) -> list[DeadLetter]:
        """Dead letters matching ``query``, by consumer then seq."""
        filters = Filters("seq > ?", params=(query.after_seq,))
        filters.equal("consumer", query.consumer)
        filters.equal("state", query.state.value if query.state else None)
        sql = f"{_SELECT_DEAD}{filters.where()} ORDER BY consumer, seq LIMIT ?"
        rows = await self._db.fetch_all(sql, (*filters.params, query.limit))
        return [_dead_letter_from_row(row) for row in rows]

    async def dead_counts(self) -> dict[str, int]:
        """How many records each consumer holds dead (not queued for redrive)."""
        rows = await self._db.fetch_all(_COUNT_DEAD)
        return {row["consumer"]: int(row["dead"]) for row in rows}

    async def request_redrive(
        self, consumer: str, seqs: Sequence[int] | None, now: datetime
    ) -> list[int]:
        """Queue the consumer's dead letters (all, or those of ``seqs``) for
        another try; return the seqs queued now."""
        sql, params = _REDRIVE, [to_text(now), consumer, *(seqs or ())]
        if seqs is not None:
            if not seqs:
                return []
            sql += f" AND seq IN ({', '.join('?' * len(seqs))})"
        async with (
            self._db.transaction() as conn,
            conn.execute(sql + " RETURNING seq", params) as rows,
        ):
            queued = [int(row[0]) for row in await rows.fetchall()]
        return sorted(queued)

    async def redrives(self, consumer: str, limit: int) -> list[DeadLetter]:
        """The consumer's dead letters queued for another try, oldest first."""
        rows = await self._db.fetch_all(_REDRIVE_ROWS, (consumer, limit))
        return [_dead_letter_from_row(row) for row in rows]

    async def mark_redelivered(self, consumer: str, seq: int, now: datetime) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(_REDELIVERED, (to_text(now), consumer, seq))

    # --- what the sync of a stream needs besides ------------------------------

    async def acknowledge(
        self,
        cursor: Cursor,
        position: int,
        set_aside: Sequence[tuple[int, str]],
        now: datetime,
    ) -> None:
        """The receiver holds everything up to ``position``, apart from the
        ``(seq, reason)`` records it set aside: those become dead letters,
        re-driven ones up to ``position`` are settled, and the cursor moves, in
        one transaction."""
        at = to_text(now)
        async with self._db.transaction() as conn:
            await conn.execute(_SETTLE_REDRIVEN, (at, cursor.consumer, position))
            for seq, reason in set_aside:
                row = (cursor.consumer, cursor.stream, seq, 1, _cut(reason), at, at)
                await conn.execute(_BURY, row)
            await conn.execute(_ADVANCE_DELIVERED, (position, at, at, cursor.consumer))

    async def oldest_kept(self, consumer: str) -> int | None:
        """The lowest seq of the consumer's dead letters not yet re-delivered,
        which must stay in the outbox for a redrive to send."""
        row = await self._db.fetch_one(_OLDEST_KEPT, (consumer,))
        return None if row is None or row[0] is None else int(row[0])

    async def rewind(self, consumer: str, position: int, now: datetime) -> None:
        """Move the cursor back to ``position``, to send what follows again."""
        async with self._db.transaction() as conn:
            await conn.execute(_REWIND, (position, to_text(now), consumer))

    async def stop(
        self, consumer: str, reason: str, anomaly: NewRecord, now: datetime
    ) -> None:
        """Stop the consumer until :meth:`resume`, raising ``anomaly`` with it."""
        at, why = to_text(now), _cut(reason)
        async with self._db.transaction() as conn:
            await conn.execute(_STOP, (why, why, at, consumer))
            await append(conn, anomaly)

    async def resume(self, consumer: str, now: datetime) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(_RESUME, (to_text(now), consumer))


def _cut(text: str) -> str:
    if len(text) <= MAX_ERROR_CHARS:
        return text
    return text[: MAX_ERROR_CHARS - 3] + "..."


def _cursor_from_row(row: sqlite3.Row) -> Cursor:
    return Cursor(
        consumer=row["consumer"],
        stream=row["stream"],
        position=row["position"],
        attempts=row["attempts"],
        last_error=row["last_error"],
        last_success_at=optional_time(row["last_success_at"]),
        updated_at=from_text(row["updated_at"]),
        stopped_reason=row["stopped_reason"],
    )


def _dead_letter_from_row(row: sqlite3.Row) -> DeadLetter:
    return DeadLetter(
        consumer=row["consumer"],
        stream=row["stream"],
        seq=row["seq"],
        attempts=row["attempts"],
        reason=row["reason"],
        dead_at=from_text(row["dead_at"]),
        state=DeadLetterState(row["state"]),
        updated_at=from_text(row["updated_at"]),
    )
