"""The write transaction: nested blocks of one task join it, other tasks wait."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from edge_agent.clients.storage.database import Database


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    """A fresh database holding one table of notes."""
    opened = Database(tmp_path / "t.sqlite3")
    await opened.open()
    async with opened.transaction() as conn:
        await conn.execute("CREATE TABLE notes (text TEXT NOT NULL)")
    yield opened
    await opened.close()


async def _texts(db: Database) -> list[str]:
    return [row["text"] for row in await db.fetch_all("SELECT text FROM notes")]


async def test_a_nested_block_joins_and_commits_with_the_outer_one(
    db: Database,
) -> None:
    async with db.transaction() as outer:
        await outer.execute("INSERT INTO notes VALUES ('first')")
        async with db.transaction() as inner:
            await inner.execute("INSERT INTO notes VALUES ('second')")
        assert await _texts(db) == []

    assert await _texts(db) == ["first", "second"]


async def _two_writes_then_a_failure(db: Database) -> None:
    async with db.transaction() as outer:
        await outer.execute("INSERT INTO notes VALUES ('first')")
        async with db.transaction() as inner:
            await inner.execute("INSERT INTO notes VALUES ('second')")
        raise RuntimeError("the audit entry could not be written")


async def test_a_failure_anywhere_rolls_back_the_whole(db: Database) -> None:
    with pytest.raises(RuntimeError):
        await _two_writes_then_a_failure(db)

    assert await _texts(db) == []


async def test_a_task_started_inside_does_not_join_but_waits(db: Database) -> None:
    async def elsewhere() -> None:
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO notes VALUES ('other task')")

    async with db.transaction() as conn:
        await conn.execute("INSERT INTO notes VALUES ('owner')")
        other = asyncio.create_task(elsewhere())
        await asyncio.sleep(0.05)
        assert not other.done()
    await asyncio.wait_for(other, 5)

    assert await _texts(db) == ["owner", "other task"]
