"""Storage client: the outbox, everything that leaves the appliance, per stream.

A record is written with :func:`append` inside the caller's transaction, so an
event and the change that caused it are committed together or not at all.
Each stream's ``seq`` is gapless and assigned at commit time: it is the
stream's last ``seq`` plus one, taken under the single writer lock from a
head row per stream, which pruning delivered rows leaves alone.
:func:`append_all` reserves the seqs of many records with one head update
per stream and inserts them in one statement, since each statement is a
round trip to the connection's thread while the writer lock is held.

Consumers (event sinks, the sync of each stream) read after their own cursor
with :meth:`OutboxRepository.after`, so every consumer reads the outbox the
same way and none can hide a record from another.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import aiosqlite

from edge_agent.clients.storage.database import Database
from edge_agent.clock import from_text, to_text

# Moves the stream's head by the number of records added; the new head is the
# seq of the last of them.
_RESERVE_SEQS = """
INSERT INTO outbox_heads (stream, seq) VALUES (?, ?)
ON CONFLICT (stream) DO UPDATE SET seq = seq + excluded.seq
RETURNING seq
"""
_INSERT = """
INSERT INTO outbox (stream, seq, id, type, occurred_at, payload, monotonic_ns,
                    boot_id)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
"""
_AFTER = "SELECT * FROM outbox WHERE stream = ? AND seq > ? ORDER BY seq LIMIT ?"
_HEAD = "SELECT seq AS head FROM outbox_heads WHERE stream = ?"
_AT = "SELECT * FROM outbox WHERE stream = ? AND seq = ?"
_OF_TYPE = """
SELECT * FROM outbox WHERE stream = ? AND type = ? AND seq > ? ORDER BY seq LIMIT ?
"""
_PRUNE = "DELETE FROM outbox WHERE stream = ? AND seq <= ?"
_COUNT_AFTER = "SELECT COUNT(*) FROM outbox WHERE stream = ? AND seq > ?"

_BOOT_ID_FILE = Path("/proc/sys/kernel/random/boot_id")


@dataclass(frozen=True, slots=True)
class NewRecord:
    """A record not yet in the outbox."""

    stream: str
    type: str
    occurred_at: datetime
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    stream: str
    seq: int
    id: str
    type: str
    occurred_at: datetime
    payload: dict[str, Any]
    monotonic_ns: int
    boot_id: str


@cache
def boot_id() -> str:
    """This boot of the machine: monotonic times compare only within one."""
    try:
        return _BOOT_ID_FILE.read_text(encoding="ascii").strip()
    except OSError:
        # Not Linux, or /proc hidden: one id per process is the safe fallback,
        # since the monotonic clock is at least steady within a process.
        return f"process-{uuid.uuid4()}"


async def append(conn: aiosqlite.Connection, new: NewRecord) -> OutboxRecord:
    """Add ``new`` to its stream inside the caller's write transaction."""
    (record,) = await append_all(conn, [new])
    return record


async def append_all(
    conn: aiosqlite.Connection, news: Iterable[NewRecord]
) -> list[OutboxRecord]:
    """Add every record to its stream, in the order given, inside the caller's
    write transaction; the seqs are the same as appending them one by one."""
    pending = list(news)
    if not pending:
        return []
    next_seq: dict[str, int] = {}
    for stream, count in Counter(new.stream for new in pending).items():
        next_seq[stream] = await _reserve_seqs(conn, stream, count)

    records = []
    for new in pending:
        records.append(_stored(new, next_seq[new.stream]))
        next_seq[new.stream] += 1
    await conn.executemany(_INSERT, [_row(record) for record in records])
    return records


async def _reserve_seqs(conn: aiosqlite.Connection, stream: str, count: int) -> int:
    """Take the next ``count`` seqs of ``stream``; return the first of them."""
    async with conn.execute(_RESERVE_SEQS, (stream, count)) as cursor:
        row = await cursor.fetchone()
    last = int(row[0]) if row else count
    return last - count + 1


def _stored(new: NewRecord, seq: int) -> OutboxRecord:
    return OutboxRecord(
        stream=new.stream,
        seq=seq,
        id=str(uuid.uuid4()),
        type=new.type,
        occurred_at=new.occurred_at,
        payload=new.payload,
        monotonic_ns=time.monotonic_ns(),
        boot_id=boot_id(),
    )


def _row(record: OutboxRecord) -> tuple[object, ...]:
    return (
        record.stream,
        record.seq,
        record.id,
        record.type,
        to_text(record.occurred_at),
        json.dumps(record.payload, sort_keys=True, separators=(",", ":")),
        record.monotonic_ns,
        record.boot_id,
    )


class OutboxRepository:
    """Reads of the outbox; writes go through :func:`append`."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, new: NewRecord) -> OutboxRecord:
        """Append one record in a transaction of its own."""
        async with self._db.transaction() as conn:
            return await append(conn, new)

    async def after(self, stream: str, seq: int, limit: int) -> list[OutboxRecord]:
        """Up to ``limit`` records of ``stream`` after ``seq``, in order."""
        rows = await self._db.fetch_all(_AFTER, (stream, seq, limit))
        return [record_from_row(row) for row in rows]

    async def of_type_after(
        self, stream: str, record_type: str, seq: int, limit: int
    ) -> list[OutboxRecord]:
        """Up to ``limit`` records of one type after ``seq``, in order (the
        ``outbox_type`` index serves it, however rare the type)."""
        rows = await self._db.fetch_all(_OF_TYPE, (stream, record_type, seq, limit))
        return [record_from_row(row) for row in rows]

    async def get(self, stream: str, seq: int) -> OutboxRecord | None:
        row = await self._db.fetch_one(_AT, (stream, seq))
        return None if row is None else record_from_row(row)

    async def prune(self, stream: str, upto: int) -> int:
        """Delete the stream's records up to ``upto``, which every consumer of
        the stream is done with; return how many went."""
        async with self._db.transaction() as conn:
            cursor = await conn.execute(_PRUNE, (stream, upto))
        return cursor.rowcount

    async def count_after(
        self, stream: str, seq: int, types: frozenset[str] | None = None
    ) -> int:
        """Records of ``stream`` after ``seq``, of ``types`` only if given."""
        sql = _COUNT_AFTER
        params: list[object] = [stream, seq]
        if types is not None:
            sql += f" AND type IN ({', '.join('?' * len(types))})"
            params.extend(sorted(types))
        row = await self._db.fetch_one(sql, tuple(params))
        return int(row[0]) if row else 0

    async def head(self, stream: str) -> int:
        """The stream's highest ``seq``; 0 when it is empty."""
        row = await self._db.fetch_one(_HEAD, (stream,))
        return int(row["head"]) if row else 0


def record_from_row(row: sqlite3.Row) -> OutboxRecord:
    return OutboxRecord(
        stream=row["stream"],
        seq=row["seq"],
        id=row["id"],
        type=row["type"],
        occurred_at=from_text(row["occurred_at"]),
        payload=json.loads(row["payload"]),
        monotonic_ns=row["monotonic_ns"],
        boot_id=row["boot_id"],
    )
