"""Storage: pragmas and numbered migrations on a real SQLite file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from edge_agent.clients.storage import migrations
from edge_agent.clients.storage.database import Database
from edge_agent.clients.storage.migrations import Migration, available_migrations


async def test_fresh_database_gets_every_migration(tmp_path: Path) -> None:
    db = Database(tmp_path / "edge.sqlite3")

    applied = await db.open()
    await db.close()

    assert applied == [m.version for m in available_migrations()]
    assert applied[0] == 1
    with sqlite3.connect(tmp_path / "edge.sqlite3") as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations")]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert versions == applied
    assert {"people", "face_examples", "cameras", "attendance", "decisions"} <= tables


async def test_reopening_applies_nothing_and_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "edge.sqlite3"
    first = Database(path)
    await first.open()
    async with first.transaction() as conn:
        await conn.execute(
            "INSERT INTO cameras (id, name, created_at) VALUES ('c1', 'Gate', 'now')"
        )
    await first.close()

    second = Database(path)
    applied = await second.open()
    rows = await second.fetch_all("SELECT id FROM cameras")
    await second.close()

    assert applied == []
    assert [r["id"] for r in rows] == ["c1"]


async def test_connection_is_durable_and_checks_foreign_keys(tmp_path: Path) -> None:
    db = Database(tmp_path / "edge.sqlite3", busy_timeout_ms=1234)
    await db.open()

    pragmas = {
        name: (await db.fetch_one(f"PRAGMA {name}") or [None])[0]
        for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
    }
    await db.close()

    # synchronous 2 is FULL (https://sqlite.org/pragma.html#pragma_synchronous).
    assert pragmas == {
        "journal_mode": "wal",
        "synchronous": 2,
        "foreign_keys": 1,
        "busy_timeout": 1234,
    }


async def test_failed_transaction_leaves_nothing(tmp_path: Path) -> None:
    db = Database(tmp_path / "edge.sqlite3")
    await db.open()

    try:
        async with db.transaction() as conn:
            await conn.execute(
                "INSERT INTO cameras (id, name, created_at) VALUES ('c1', 'G', 'now')"
            )
            raise RuntimeError("abort")
    except RuntimeError:
        pass
    rows = await db.fetch_all("SELECT id FROM cameras")
    await db.close()

    assert rows == []


async def test_failing_migration_is_rolled_back_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = Migration(99, "broken", "CREATE TABLE extra (x INT);\nNOT SQL AT ALL;")
    shipped = available_migrations()
    monkeypatch.setattr(migrations, "available_migrations", lambda: [*shipped, broken])
    db = Database(tmp_path / "edge.sqlite3")

    with pytest.raises(sqlite3.OperationalError):
        await db.open()
    await db.close()

    with sqlite3.connect(tmp_path / "edge.sqlite3") as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations")]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert versions == [m.version for m in shipped]
    assert "extra" not in tables
