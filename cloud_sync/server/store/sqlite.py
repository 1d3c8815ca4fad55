"""SQLite store: one file in WAL mode, for an office that runs one server.

All statements go through one connection guarded by one lock. SQLite has a
single writer per file anyway, and sharing the connection between a read and
a write transaction would let the read see, or join, the write; the lock keeps
each operation whole. Writes use ``BEGIN IMMEDIATE`` so a CLI command on the
same file (registering a site while the server runs) waits its turn instead
of failing half way. ``synchronous=FULL``: an acknowledged batch survives a
power cut, not only a crash of the process.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import aiosqlite

from cloud_sync.audit_chain import time_text
from cloud_sync.protocol import Quarantined, Stream
from cloud_sync.server.errors import Unavailable
from cloud_sync.server.store.flow import run_batch
from cloud_sync.server.store.model import (
    AttendanceQuery,
    AttendanceRow,
    BatchOutcome,
    PreparedBatch,
    QuarantineRow,
    Site,
    SiteExists,
    StoredRecord,
    StreamHead,
)
from cloud_sync.server.store.rows import (
    SITE_TABLES,
    attendance_row_of,
    attendance_sql,
    head_of,
    record_rows,
    site_of,
)
from cloud_sync.server.store.schema import SQLITE_MIGRATIONS

logger = logging.getLogger(__name__)

_CREATE_MIGRATIONS = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at TEXT NOT NULL
)
"""
_INSERT_SITE = """
INSERT INTO sites (site_id, name, token_hash, created_at, token_changed_at)
VALUES (?, ?, ?, ?, ?)
"""
_INSERT_HEAD = (
    "INSERT INTO stream_heads (site_id, stream) VALUES (?, ?) ON CONFLICT DO NOTHING"
)
_SELECT_HEAD = "SELECT * FROM stream_heads WHERE site_id = ? AND stream = ?"
_INSERT_RECORD = """
INSERT INTO records (site_id, stream, seq, id, type, occurred_at, monotonic_ns,
                     boot_id, payload, day, person_id, chain_hash, received_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT DO NOTHING
"""
_RELEASE_QUARANTINE = """
DELETE FROM quarantine WHERE site_id = ? AND stream = ? AND seq = ?
"""
_INSERT_QUARANTINE = """
INSERT INTO quarantine (site_id, stream, seq, reason, raw, received_at)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT DO NOTHING
"""
_ADVANCE_HEAD = """
UPDATE stream_heads
SET acked_seq = ?, site_head = ?, updated_at = ?, chain_hash = ?
WHERE site_id = ? AND stream = ?
"""
_BREAK_CHAIN = """
UPDATE stream_heads
SET chain_state = 'broken', chain_problem = ?, updated_at = ?
WHERE site_id = ? AND stream = ?
"""
_INSERT_KEY = """
INSERT INTO idempotency_keys (site_id, stream, key, digest, first_seq, last_seq,
                              created_at)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT DO NOTHING
"""
_SELECT_DIGEST = """
SELECT digest FROM idempotency_keys WHERE site_id = ? AND stream = ? AND key = ?
"""
_SELECT_HASHES = """
SELECT seq, chain_hash FROM records
WHERE site_id = ? AND stream = 'audit' AND seq BETWEEN ? AND ?
"""
_SELECT_QUARANTINED = """
SELECT seq, reason FROM quarantine
WHERE site_id = ? AND stream = ? AND seq BETWEEN ? AND ? ORDER BY seq
"""
_TOUCH_SITE = "UPDATE sites SET last_contact_at = ?, clock_skew_s = ? WHERE site_id = ?"


class SqliteStore:
    """:class:`~cloud_sync.server.store.model.Store` on one SQLite file."""

    def __init__(self, path: Path, busy_timeout_ms: int = 5000) -> None:
        self._path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._conn: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(self._path, isolation_level=None)
        conn.row_factory = aiosqlite.Row
        await conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
        await conn.execute("PRAGMA journal_mode = WAL")
        await conn.execute("PRAGMA synchronous = FULL")
        self._conn = conn
        await self._migrate()
        logger.info("SQLite store open at %s", self._path)

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close()

    async def add_site(
        self, site_id: str, name: str, token_hash: str, at: datetime
    ) -> Site:
        stamp = time_text(at)
        try:
            async with self._write() as conn:
                await conn.execute(
                    _INSERT_SITE, (site_id, name, token_hash, stamp, stamp)
                )
                await conn.executemany(
                    _INSERT_HEAD, [(site_id, stream.value) for stream in Stream]
                )
        except sqlite3.IntegrityError as exc:
            raise SiteExists(site_id) from exc
        return Site(site_id, name, at)

    async def set_token(self, site_id: str, token_hash: str, at: datetime) -> bool:
        sql = "UPDATE sites SET token_hash = ?, token_changed_at = ? WHERE site_id = ?"
        async with self._write() as conn:
            cursor = await conn.execute(sql, (token_hash, time_text(at), site_id))
            return cursor.rowcount == 1

    async def remove_site(self, site_id: str) -> bool:
        async with self._write() as conn:
            for table in SITE_TABLES:
                sql = f"DELETE FROM {table} WHERE site_id = ?"
                cursor = await conn.execute(sql, (site_id,))
            return cursor.rowcount == 1

    async def list_sites(self) -> list[Site]:
        async with self._read() as conn:
            rows = await conn.execute_fetchall("SELECT * FROM sites ORDER BY site_id")
        return [site_of(row, _read_time) for row in rows]

    async def site_for_token(self, token_hash: str) -> str | None:
        sql = "SELECT site_id FROM sites WHERE token_hash = ?"
        async with self._read() as conn:
            rows = list(await conn.execute_fetchall(sql, (token_hash,)))
        return str(rows[0][0]) if rows else None

    async def record_contact(
        self, site_id: str, at: datetime, clock_skew_s: float | None
    ) -> None:
        async with self._write() as conn:
            await conn.execute(_TOUCH_SITE, (time_text(at), clock_skew_s, site_id))

    async def apply_batch(self, batch: PreparedBatch) -> BatchOutcome:
        async with self._write() as conn:
            result = await run_batch(_SqliteBatch(conn), batch)
        return result.settled()

    async def stream_heads(self, site_id: str | None = None) -> list[StreamHead]:
        sql = "SELECT * FROM stream_heads"
        params: tuple[str, ...] = ()
        if site_id is not None:
            sql, params = sql + " WHERE site_id = ?", (site_id,)
        async with self._read() as conn:
            rows = await conn.execute_fetchall(
                sql + " ORDER BY site_id, stream", params
            )
        return [head_of(row, _read_time) for row in rows]

    async def attendance(self, query: AttendanceQuery) -> list[AttendanceRow]:
        sql, params = attendance_sql(query, _placeholder, time_text)
        async with self._read() as conn:
            rows = await conn.execute_fetchall(sql, params)
        return [attendance_row_of(row, _read_time) for row in rows]

    async def count_records(self, site_id: str, stream: Stream) -> int:
        sql = "SELECT COUNT(*) FROM records WHERE site_id = ? AND stream = ?"
        async with self._read() as conn:
            rows = list(await conn.execute_fetchall(sql, (site_id, stream.value)))
        return int(rows[0][0])

    async def _migrate(self) -> None:
        async with self._write() as conn:
            await conn.execute(_CREATE_MIGRATIONS)
            rows = await conn.execute_fetchall("SELECT version FROM schema_migrations")
            applied = {int(row[0]) for row in rows}
            for migration in SQLITE_MIGRATIONS:
                if migration.version in applied:
                    continue
                for statement in migration.statements:
                    await conn.execute(statement)
                await conn.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                    (migration.version, migration.name, time_text(_now())),
                )
                logger.info(
                    "Applied migration %d (%s)", migration.version, migration.name
                )

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            yield self._connection()

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            conn = self._connection()
            try:
                await conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise Unavailable(f"database busy: {exc}") from exc
            try:
                yield conn
            except BaseException:
                await conn.rollback()
                raise
            await conn.commit()

    def _connection(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise RuntimeError("the SQLite store is not open")
        return self._conn


class _SqliteBatch:
    """The batch flow's steps on SQLite, inside the caller's write transaction."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def lock_head(self, site_id: str, stream: Stream) -> StreamHead:
        # BEGIN IMMEDIATE already holds the one write lock of the file.
        await self._conn.execute(_INSERT_HEAD, (site_id, stream.value))
        rows = list(
            await self._conn.execute_fetchall(_SELECT_HEAD, (site_id, stream.value))
        )
        return head_of(rows[0], _read_time)

    async def stored_digest(self, site_id: str, stream: Stream, key: str) -> str | None:
        params = (site_id, stream.value, key)
        rows = list(await self._conn.execute_fetchall(_SELECT_DIGEST, params))
        return str(rows[0][0]) if rows else None

    async def held_hashes(self, site_id: str, first: int, last: int) -> dict[int, str]:
        rows = await self._conn.execute_fetchall(_SELECT_HASHES, (site_id, first, last))
        return {int(row[0]): str(row[1]) for row in rows}

    async def insert_records(
        self, batch: PreparedBatch, records: Sequence[StoredRecord]
    ) -> None:
        rows = record_rows(batch, records, time_text)
        await self._conn.executemany(_INSERT_RECORD, rows)

    async def insert_quarantine(
        self, batch: PreparedBatch, rows: Sequence[QuarantineRow]
    ) -> None:
        received = time_text(batch.received_at)
        params = [
            (batch.site_id, batch.stream.value, q.seq, q.reason, q.raw, received)
            for q in rows
        ]
        await self._conn.executemany(_INSERT_QUARANTINE, params)

    async def advance_head(
        self, batch: PreparedBatch, acked_seq: int, chain_hash: str | None
    ) -> None:
        params = (
            acked_seq,
            batch.site_head,
            time_text(batch.received_at),
            chain_hash,
            batch.site_id,
            batch.stream.value,
        )
        await self._conn.execute(_ADVANCE_HEAD, params)

    async def mark_chain_broken(self, batch: PreparedBatch, problem: str) -> None:
        params = (
            problem,
            time_text(batch.received_at),
            batch.site_id,
            batch.stream.value,
        )
        await self._conn.execute(_BREAK_CHAIN, params)

    async def save_key(self, batch: PreparedBatch) -> None:
        params = (
            batch.site_id,
            batch.stream.value,
            batch.key,
            batch.digest,
            batch.first_seq,
            batch.last_seq,
            time_text(batch.received_at),
        )
        await self._conn.execute(_INSERT_KEY, params)

    async def release_quarantine(
        self, site_id: str, stream: Stream, seqs: Sequence[int]
    ) -> None:
        params = [(site_id, stream.value, seq) for seq in seqs]
        await self._conn.executemany(_RELEASE_QUARANTINE, params)

    async def quarantined_between(
        self, site_id: str, stream: Stream, first: int, last: int
    ) -> list[Quarantined]:
        params = (site_id, stream.value, first, last)
        rows = await self._conn.execute_fetchall(_SELECT_QUARANTINED, params)
        return [Quarantined(seq=int(row[0]), reason=str(row[1])) for row in rows]


def _placeholder(_: int) -> str:
    return "?"


def _read_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _now() -> datetime:
    return datetime.now(UTC)
