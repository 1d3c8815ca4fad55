"""Storage client: SQLite in WAL mode, one writer connection and one reader.

SQLite allows one writer at a time, and a connection that two coroutines use
at once would interleave their transactions, so every write transaction runs
under one ``asyncio.Lock`` on the writer connection. Reads go to a second,
query-only connection: in WAL mode a reader sees the last commit and never
waits for the writer, so a long batch commit does not stall the lookups of
arriving requests. ``synchronous=FULL`` makes each committed transaction
survive power loss, which is the promise an acknowledged frame relies on.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from edge_agent.clients.storage.migrations import apply_migrations
from edge_agent.errors import Unavailable

logger = logging.getLogger(__name__)

Params = tuple[Any, ...] | dict[str, Any]


# The database and task of the write transaction open in this context. Tasks
# started inside it inherit the value but are other tasks, so they never join
# a transaction they do not own.
_open_transaction: contextvars.ContextVar[
    tuple[int, asyncio.Task[Any] | None] | None
] = contextvars.ContextVar("open_transaction", default=None)


class StorageError(Unavailable):
    slug = "storage-unavailable"
    title = "Storage unavailable"


class Database:
    """The appliance's SQLite file, opened once per process."""

    def __init__(self, path: Path, busy_timeout_ms: int = 5000) -> None:
        self.path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._conn: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    async def open(self) -> list[int]:
        """Open the file, set the pragmas, apply pending migrations; return them."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: transactions are begun explicitly below, never
        # implicitly by the sqlite3 module.
        self._conn = await aiosqlite.connect(self.path, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        await self._set_pragmas(self._conn)
        # Deleted and overwritten content is zeroed rather than left in free
        # space, so that erasing a person leaves none of their data in the file.
        await self._conn.execute("PRAGMA secure_delete = ON")

        applied = await apply_migrations(self._conn)
        self._reader = await aiosqlite.connect(self.path, isolation_level=None)
        self._reader.row_factory = sqlite3.Row
        await self._set_pragmas(self._reader)
        await self._reader.execute("PRAGMA query_only = ON")
        logger.info("Database %s open, migrations applied: %s", self.path, applied)
        return applied

    async def close(self) -> None:
        """Close both connections; the writer is closed even when the reader
        fails to close, and that failure is raised afterwards."""
        reader, writer = self._reader, self._conn
        self._reader = self._conn = None
        try:
            if reader is not None:
                await reader.close()
        finally:
            if writer is not None:
                await writer.close()

    async def _set_pragmas(self, conn: aiosqlite.Connection) -> None:
        await conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
        await conn.execute("PRAGMA journal_mode = WAL")
        await conn.execute("PRAGMA synchronous = FULL")
        await conn.execute("PRAGMA foreign_keys = ON")

    @property
    def connection(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise StorageError("the database is not open")
        return self._conn

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """Run the block as one immediate write transaction, committed on exit.

        Inside a transaction of the same task, the block joins it instead:
        the outermost block commits everything or nothing, so a change and its
        audit entry, written by two repositories, are one commit.
        """
        task = asyncio.current_task()
        if _open_transaction.get() == (id(self), task):
            yield self.connection
            return
        async with self._lock:
            conn = self.connection
            token = _open_transaction.set((id(self), task))
            try:
                await conn.execute("BEGIN IMMEDIATE")
                yield conn
            except BaseException:
                # aiosqlite runs requests in order on its thread: even when the
                # BEGIN above was interrupted, this rollback runs after it.
                await conn.rollback()
                raise
            finally:
                _open_transaction.reset(token)
            await conn.commit()

    async def fetch_all(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        """Rows of a read, as of the last commit."""
        rows = await self._read_connection().execute_fetchall(sql, params)
        return list(rows)

    async def fetch_one(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        rows = await self.fetch_all(sql, params)
        return rows[0] if rows else None

    def _read_connection(self) -> aiosqlite.Connection:
        if self._reader is None:
            raise StorageError("the database is not open")
        return self._reader

    async def execute_many(self, sql: str, rows: Iterable[Params]) -> None:
        async with self.transaction() as conn:
            await conn.executemany(sql, rows)
