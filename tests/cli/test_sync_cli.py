"""Site admin CLI: ``sync status|now|resume|redrive|dead-letters`` on a real
database, with no daemon running."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from local_services import free_port
from typer.testing import CliRunner, Result

from edge_agent.cli.sync import app
from edge_agent.clients.storage.database import Database
from edge_agent.clients.storage.outbox import NewRecord, OutboxRepository

runner = CliRunner()
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A site database with three unsent marks; no daemon on the API port."""

    async def write() -> None:
        db = Database(tmp_path / "data" / "edge-agent.sqlite3")
        await db.open()
        outbox = OutboxRepository(db)
        for n in range(3):
            body = {"person_id": f"p{n}", "mark_id": n}
            await outbox.add(NewRecord("attendance", "mark.recorded", NOW, body))
        await db.close()

    (tmp_path / "data").mkdir()
    asyncio.run(write())
    monkeypatch.setenv("EDGE_AGENT_SERVER__PORT", str(free_port()))
    return tmp_path / "data"


def _sync(*args: str, data_dir: Path) -> Result:
    return runner.invoke(app, [*args, "--data-dir", str(data_dir)])


def test_status_offline_reads_the_database(data_dir: Path) -> None:
    result = _sync("status", "--offline", "--json", data_dir=data_dir)

    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["enabled"] is False
    streams = {s["stream"]: s for s in body["streams"]}
    assert set(streams) == {"attendance", "audit", "events"}
    assert streams["attendance"]["head"] == 3
    assert streams["attendance"]["acked"] == 0
    assert streams["attendance"]["lag_records"] == 3
    assert streams["attendance"]["state"] == "daemon not asked"


def test_status_offline_prints_a_table(data_dir: Path) -> None:
    result = _sync("status", "--offline", data_dir=data_dir)

    assert result.exit_code == 0, result.output
    assert "Sync (off: no sync.url)" in result.stdout
    assert "attendance" in result.stdout


@pytest.mark.parametrize("command", ["status", "now"])
def test_without_a_daemon_the_live_commands_say_so(
    data_dir: Path, command: str
) -> None:
    result = _sync(command, data_dir=data_dir)

    assert result.exit_code == 1
    assert "no daemon answers" in result.stderr
    assert "--offline" in result.stderr


def test_dead_letters_and_redrive_of_a_clean_stream(data_dir: Path) -> None:
    letters = _sync("dead-letters", "--json", data_dir=data_dir)
    redrive = _sync("redrive", "attendance", data_dir=data_dir)

    assert letters.exit_code == 0, letters.output
    assert json.loads(letters.stdout) == {"dead_letters": []}
    assert redrive.exit_code == 0, redrive.output
    assert "0 record(s) of attendance" in redrive.stdout


def test_resume_of_an_unknown_stream_fails_clearly(data_dir: Path) -> None:
    result = _sync("resume", "nope", data_dir=data_dir)

    assert result.exit_code == 1
    assert "unknown sync stream 'nope'" in result.stderr
