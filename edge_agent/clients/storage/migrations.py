"""Storage client: numbered SQL migrations, applied in order and recorded in the file.

A migration is ``migrations/NNNN_name.sql``. Each runs in its own transaction
together with the row that records it, so a crash mid-migration leaves the
database at the previous version, never half-way.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources

import aiosqlite

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at TEXT NOT NULL
)
"""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def available_migrations() -> list[Migration]:
    """Every migration shipped with the package, by version."""
    folder = resources.files(__package__).joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    return found


async def applied_versions(conn: aiosqlite.Connection) -> set[int]:
    await conn.execute(_CREATE_TABLE)
    async with conn.execute("SELECT version FROM schema_migrations") as cursor:
        return {row[0] for row in await cursor.fetchall()}


async def apply_migrations(conn: aiosqlite.Connection) -> list[int]:
    """Apply the migrations this file lacks; return the versions applied now."""
    done = await applied_versions(conn)
    applied = []
    for migration in available_migrations():
        if migration.version not in done:
            await _apply(conn, migration)
            applied.append(migration.version)
    return applied


async def _apply(conn: aiosqlite.Connection, migration: Migration) -> None:
    record = (
        "INSERT INTO schema_migrations (version, name, applied_at) "
        f"VALUES ({migration.version}, '{migration.name}', "
        f"'{datetime.now(UTC).isoformat()}');"
    )
    # executescript() runs statements one by one outside any implicit
    # transaction; the explicit BEGIN/COMMIT makes the script atomic.
    script = f"BEGIN IMMEDIATE;\n{migration.sql}\n{record}\nCOMMIT;"
    try:
        await conn.executescript(script)
    except Exception:
        if conn.in_transaction:
            await conn.rollback()
        raise
    logger.info("Applied migration %04d_%s", migration.version, migration.name)
