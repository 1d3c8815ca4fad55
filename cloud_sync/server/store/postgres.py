"""PostgreSQL store: an asyncpg pool, safe for several servers on one database.

Replicas of the server may receive the same batch at the same moment. Each
batch transaction locks its stream's head row (``SELECT ... FOR UPDATE``)
before reading the head, so the decisions of two replicas on one stream are
taken one after the other, each on the head the other committed; records go
in with ``ON CONFLICT DO NOTHING`` on (site, stream, seq) as a second guard.
Migrations run under a transaction-scoped advisory lock, so replicas that
start together apply each migration once.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Final

import asyncpg

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
from cloud_sync.server.store.schema import POSTGRES_MIGRATIONS

logger = logging.getLogger(__name__)

# A lost or refused connection, a server shutting down: worth a retry later.
_UNAVAILABLE = (
    OSError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
)
# Any constant works; it only has to be the same for every replica.
_MIGRATION_LOCK: Final = 0x636C6F7564
_CREATE_MIGRATIONS = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL
)
"""
_INSERT_SITE = """
INSERT INTO sites (site_id, name, token_hash, created_at, token_changed_at)
VALUES ($1, $2, $3, $4, $4)
"""
_INSERT_HEAD = """
INSERT INTO stream_heads (site_id, stream) VALUES ($1, $2) ON CONFLICT DO NOTHING
"""
_LOCK_HEAD = """
SELECT * FROM stream_heads WHERE site_id = $1 AND stream = $2 FOR UPDATE
"""
_INSERT_RECORD = """
INSERT INTO records (site_id, stream, seq, id, type, occurred_at, monotonic_ns,
                     boot_id, payload, day, person_id, chain_hash, received_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11, $12, $13)
ON CONFLICT DO NOTHING
"""
_RELEASE_QUARANTINE = """
DELETE FROM quarantine WHERE site_id = $1 AND stream = $2 AND seq = $3
"""
_INSERT_QUARANTINE = """
INSERT INTO quarantine (site_id, stream, seq, reason, raw, received_at)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT DO NOTHING
"""
_ADVANCE_HEAD = """
UPDATE stream_heads
SET acked_seq = $1, site_head = $2, updated_at = $3, chain_hash = $4
WHERE site_id = $5 AND stream = $6
"""
_BREAK_CHAIN = """
UPDATE stream_heads
SET chain_state = 'broken', chain_problem = $1, updated_at = $2
WHERE site_id = $3 AND stream = $4
"""
_INSERT_KEY = """
INSERT INTO idempotency_keys (site_id, stream, key, digest, first_seq, last_seq,
                              created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT DO NOTHING
"""
_SELECT_DIGEST = """
SELECT digest FROM idempotency_keys WHERE site_id = $1 AND stream = $2 AND key = $3
"""
_SELECT_HASHES = """
SELECT seq, chain_hash FROM records
WHERE site_id = $1 AND stream = 'audit' AND seq BETWEEN $2 AND $3
"""
_SELECT_QUARANTINED = """
SELECT seq, reason FROM quarantine
WHERE site_id = $1 AND stream = $2 AND seq BETWEEN $3 AND $4 ORDER BY seq
"""
_TOUCH_SITE = """
UPDATE sites SET last_contact_at = $1, clock_skew_s = $2 WHERE site_id = $3
"""


class PostgresStore:
    """:class:`~cloud_sync.server.store.model.Store` on a PostgreSQL database."""

    def __init__(self, dsn: str, min_size: int = 1, max_size: int = 10) -> None:
        self._dsn = dsn
        self._min_size = min_size
        self._max_size = max_size
        self._pool: Any = None

    async def open(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(
                self._dsn, min_size=self._min_size, max_size=self._max_size
            )
        except (OSError, asyncpg.PostgresError) as exc:
            raise Unavailable(f"cannot connect to PostgreSQL: {exc}") from exc
        await self._migrate()
        logger.info("PostgreSQL store open (pool of %d)", self._max_size)

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    async def add_site(
        self, site_id: str, name: str, token_hash: str, at: datetime
    ) -> Site:
        try:
            async with self._transaction() as conn:
                await conn.execute(_INSERT_SITE, site_id, name, token_hash, at)
                heads = [(site_id, stream.value) for stream in Stream]
                await conn.executemany(_INSERT_HEAD, heads)
        except asyncpg.UniqueViolationError as exc:
            raise SiteExists(site_id) from exc
        return Site(site_id, name, at)

    async def set_token(self, site_id: str, token_hash: str, at: datetime) -> bool:
        sql = (
            "UPDATE sites SET token_hash = $1, token_changed_at = $2 WHERE site_id = $3"
        )
        async with self._transaction() as conn:
            status = await conn.execute(sql, token_hash, at, site_id)
        return bool(status == "UPDATE 1")

    async def remove_site(self, site_id: str) -> bool:
        async with self._transaction() as conn:
            for table in SITE_TABLES:
                status = await conn.execute(
                    f"DELETE FROM {table} WHERE site_id = $1", site_id
                )
        return bool(status == "DELETE 1")

    async def list_sites(self) -> list[Site]:
        async with self._connection() as conn:
            rows = await conn.fetch("SELECT * FROM sites ORDER BY site_id")
        return [site_of(row, _as_is) for row in rows]

    async def site_for_token(self, token_hash: str) -> str | None:
        sql = "SELECT site_id FROM sites WHERE token_hash = $1"
        async with self._connection() as conn:
            value = await conn.fetchval(sql, token_hash)
        return None if value is None else str(value)

    async def record_contact(
        self, site_id: str, at: datetime, clock_skew_s: float | None
    ) -> None:
        async with self._connection() as conn:
            await conn.execute(_TOUCH_SITE, at, clock_skew_s, site_id)

    async def apply_batch(self, batch: PreparedBatch) -> BatchOutcome:
        async with self._transaction() as conn:
            result = await run_batch(_PostgresBatch(conn), batch)
        return result.settled()

    async def stream_heads(self, site_id: str | None = None) -> list[StreamHead]:
        sql = "SELECT * FROM stream_heads"
        params: tuple[str, ...] = ()
        if site_id is not None:
            sql, params = sql + " WHERE site_id = $1", (site_id,)
        async with self._connection() as conn:
            rows = await conn.fetch(sql + " ORDER BY site_id, stream", *params)
        return [head_of(row, _as_is) for row in rows]

    async def attendance(self, query: AttendanceQuery) -> list[AttendanceRow]:
        sql, params = attendance_sql(query, _placeholder, _as_is)
        async with self._connection() as conn:
            rows = await conn.fetch(sql, *params)
        return [attendance_row_of(row, _as_is) for row in rows]

    async def count_records(self, site_id: str, stream: Stream) -> int:
        sql = "SELECT COUNT(*) FROM records WHERE site_id = $1 AND stream = $2"
        async with self._connection() as conn:
            return int(await conn.fetchval(sql, site_id, stream.value))

    async def _migrate(self) -> None:
        async with self._transaction() as conn:
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
            await conn.execute(_CREATE_MIGRATIONS)
            rows = await conn.fetch("SELECT version FROM schema_migrations")
            applied = {int(row["version"]) for row in rows}
            for migration in POSTGRES_MIGRATIONS:
                if migration.version in applied:
                    continue
                for statement in migration.statements:
                    await conn.execute(statement)
                await conn.execute(
                    "INSERT INTO schema_migrations VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    datetime.now(UTC),
                )
                logger.info(
                    "Applied migration %d (%s)", migration.version, migration.name
                )

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Any]:
        if self._pool is None:
            raise RuntimeError("the PostgreSQL store is not open")
        try:
            async with self._pool.acquire() as conn:
                yield conn
        except _UNAVAILABLE as exc:
            raise Unavailable(f"PostgreSQL unavailable: {exc}") from exc

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Any]:
        async with self._connection() as conn, conn.transaction():
            yield conn


class _PostgresBatch:
    """The batch flow's steps on PostgreSQL, inside the caller's transaction."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    async def lock_head(self, site_id: str, stream: Stream) -> StreamHead:
        await self._conn.execute(_INSERT_HEAD, site_id, stream.value)
        row = await self._conn.fetchrow(_LOCK_HEAD, site_id, stream.value)
        return head_of(row, _as_is)

    async def stored_digest(self, site_id: str, stream: Stream, key: str) -> str | None:
        value = await self._conn.fetchval(_SELECT_DIGEST, site_id, stream.value, key)
        return None if value is None else str(value)

    async def held_hashes(self, site_id: str, first: int, last: int) -> dict[int, str]:
        rows = await self._conn.fetch(_SELECT_HASHES, site_id, first, last)
        return {int(row["seq"]): str(row["chain_hash"]) for row in rows}

    async def insert_records(
        self, batch: PreparedBatch, records: Sequence[StoredRecord]
    ) -> None:
        rows = record_rows(batch, records, _as_is)
        await self._conn.executemany(_INSERT_RECORD, rows)

    async def insert_quarantine(
        self, batch: PreparedBatch, rows: Sequence[QuarantineRow]
    ) -> None:
        received = batch.received_at
        params = [
            (batch.site_id, batch.stream.value, q.seq, q.reason, q.raw, received)
            for q in rows
        ]
        await self._conn.executemany(_INSERT_QUARANTINE, params)

    async def advance_head(
        self, batch: PreparedBatch, acked_seq: int, chain_hash: str | None
    ) -> None:
        await self._conn.execute(
            _ADVANCE_HEAD,
            acked_seq,
            batch.site_head,
            batch.received_at,
            chain_hash,
            batch.site_id,
            batch.stream.value,
        )

    async def mark_chain_broken(self, batch: PreparedBatch, problem: str) -> None:
        await self._conn.execute(
            _BREAK_CHAIN, problem, batch.received_at, batch.site_id, batch.stream.value
        )

    async def save_key(self, batch: PreparedBatch) -> None:
        await self._conn.execute(
            _INSERT_KEY,
            batch.site_id,
            batch.stream.value,
            batch.key,
            batch.digest,
            batch.first_seq,
            batch.last_seq,
            batch.received_at,
        )

    async def release_quarantine(
        self, site_id: str, stream: Stream, seqs: Sequence[int]
    ) -> None:
        params = [(site_id, stream.value, seq) for seq in seqs]
        await self._conn.executemany(_RELEASE_QUARANTINE, params)

    async def quarantined_between(
        self, site_id: str, stream: Stream, first: int, last: int
    ) -> list[Quarantined]:
        rows = await self._conn.fetch(
            _SELECT_QUARANTINED, site_id, stream.value, first, last
        )
        return [Quarantined(seq=int(r["seq"]), reason=str(r["reason"])) for r in rows]


def _placeholder(n: int) -> str:
    return f"${n}"


def _as_is(moment: Any) -> Any:
    """asyncpg reads and writes ``TIMESTAMPTZ`` as aware datetimes already."""
    return moment
