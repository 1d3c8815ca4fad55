"""``edge-agent db``: online backup, restore, vacuum and checks on real files."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from local_services import BIN, child_process, free_port, wait_ready
from typer.testing import CliRunner

from edge_agent.cli import app
from edge_agent.clients.storage import backup

runner = CliRunner()

# Writes rows, one commit each, until its stop file appears: another process
# changing the database while it is being copied, as the daemon would.
WRITER = """
import sqlite3, sys, time, pathlib
db, stop = sys.argv[1], pathlib.Path(sys.argv[2])
conn = sqlite3.connect(db, isolation_level=None, timeout=10)
conn.execute("PRAGMA journal_mode = WAL")
deadline = time.monotonic() + 20
while not stop.exists() and time.monotonic() < deadline:
    conn.execute("INSERT INTO filler (body) VALUES (randomblob(2000))")
conn.close()
"""


def _cli(data: Path, *args: str, code: int = 0) -> str:
    result = runner.invoke(app, [*args, "--data-dir", str(data)])
    assert result.exit_code == code, result.output
    return result.output


def _people(data: Path) -> list[str]:
    listed = json.loads(_cli(data, "users", "list", "--json"))
    return [person["employee_no"] for person in listed]


def _count(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        count: int = conn.execute("SELECT count(*) FROM filler").fetchone()[0]
        return count


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A data folder whose database holds one person, E1."""
    folder = tmp_path / "data"
    _cli(folder, "users", "add", "E1", "Ada Lovelace")
    return folder


@pytest.fixture
def backup_file(data: Path, tmp_path: Path) -> Path:
    """A backup of the ``data`` database."""
    target = tmp_path / "backups" / "one.sqlite3"
    _cli(data, "db", "backup", "--output", str(target))
    return target


@pytest.fixture
def writer(data: Path, tmp_path: Path) -> Iterator[Path]:
    """A process committing rows into the database until the fixture ends."""
    database = data / "edge-agent.sqlite3"
    with sqlite3.connect(database) as conn:
        conn.execute("CREATE TABLE filler (id INTEGER PRIMARY KEY, body BLOB)")
        conn.execute(
            "INSERT INTO filler (body) SELECT randomblob(2000) "
            "FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 "
            "FROM n WHERE i < 2000) SELECT i FROM n)"
        )
    stop = tmp_path / "stop-writer"
    process = subprocess.Popen([sys.executable, "-c", WRITER, str(database), str(stop)])
    try:
        deadline = time.monotonic() + 10
        while _count(database) <= 2000 and time.monotonic() < deadline:
            time.sleep(0.01)
        yield database
    finally:
        stop.touch()
        process.wait(timeout=10)


def test_backup_while_a_writer_commits_is_a_consistent_snapshot(
    data: Path, writer: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small steps: many chances for the writer to commit between two of them.
    monkeypatch.setattr(backup, "STEP_PAGES", 16)
    before = _count(writer)

    output = _cli(data, "db", "backup", "--output", str(tmp_path / "b.sqlite3"))
    after = _count(writer)

    copy = tmp_path / "b.sqlite3"
    check = backup.check_database(copy)
    assert "Backed up" in output
    assert check.ok, check.problems()
    assert before <= _count(copy) <= after
    assert after > before, "the writer was not writing during the backup"
    assert copy.stat().st_mode & 0o777 == 0o600
    assert not list(tmp_path.glob("*.partial"))


def test_backup_keeps_the_newest_n_in_its_folder(data: Path, tmp_path: Path) -> None:
    folder = tmp_path / "backups"
    for _ in range(4):
        _cli(data, "db", "backup", "--output", str(folder), "--keep", "2")

    kept = sorted(folder.iterdir())

    assert len(kept) == 2
    assert all(p.name.startswith("edge-agent-") for p in kept)
    assert (data / "edge-agent.sqlite3").exists()


def test_restore_round_trip_brings_back_the_backed_up_data(
    data: Path, backup_file: Path
) -> None:
    _cli(data, "users", "add", "E2", "Charles Babbage")

    output = _cli(data, "db", "restore", str(backup_file), "--force")

    assert _people(data) == ["E1"]
    assert "kept as" in output
    kept = data / "edge-agent.sqlite3.pre-restore"
    with sqlite3.connect(kept) as conn:
        rows = conn.execute("SELECT employee_no FROM people ORDER BY 1").fetchall()
    assert [row[0] for row in rows] == ["E1", "E2"]


def test_restore_and_vacuum_are_refused_while_the_daemon_runs(
    data: Path, backup_file: Path, tmp_path: Path
) -> None:
    port = free_port()
    args = [str(BIN / "edge-agent"), "serve", "--port", str(port)]
    args += ["--data-dir", str(data)]
    env = {**os.environ, "EDGE_AGENT_RECOGNIZER__URL": f"http://127.0.0.1:{port}"}
    with child_process(args, tmp_path / "serve.log", env) as daemon:
        wait_ready(f"http://127.0.0.1:{port}/healthz", daemon)
        _cli(data, "users", "add", "E2", "Charles Babbage")

        restore = _cli(data, "db", "restore", str(backup_file), "--force", code=1)
        vacuum = _cli(data, "db", "vacuum", code=1)

    assert f"in use by edge-agent serve (pid {daemon.pid})" in restore
    assert "in use by edge-agent serve" in vacuum
    assert restore.count("\n") == 1
    assert _people(data) == ["E1", "E2"]


def _garbage_pages(path: Path) -> None:
    with path.open("r+b") as handle:
        handle.seek(4096)
        handle.write(os.urandom(8192))


def _truncated(path: Path) -> None:
    with path.open("r+b") as handle:
        handle.truncate(path.stat().st_size // 2)


def _not_sqlite(path: Path) -> None:
    path.write_text("id,name\n1,Ada\n")


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(_garbage_pages, id="garbage-pages"),
        pytest.param(_truncated, id="truncated"),
        pytest.param(_not_sqlite, id="not-sqlite"),
    ],
)
def test_a_damaged_backup_is_refused_and_changes_nothing(
    data: Path, backup_file: Path, damage: object
) -> None:
    assert callable(damage)
    damage(backup_file)
    _cli(data, "users", "add", "E2", "Charles Babbage")

    output = _cli(data, "db", "restore", str(backup_file), "--force", code=1)

    assert output.startswith("error:")
    assert output.count("\n") == 1
    assert "Traceback" not in output
    assert _people(data) == ["E1", "E2"]
    assert not (data / "edge-agent.sqlite3.pre-restore").exists()


def test_check_reports_integrity_and_migrations(data: Path) -> None:
    report = json.loads(_cli(data, "db", "check", "--json"))
    vacuumed = _cli(data, "db", "vacuum")

    assert report["ok"] is True
    assert report["integrity"] == ["ok"]
    assert report["migrations_pending"] == []
    assert "Vacuumed" in vacuumed


def test_commands_without_a_database_fail_in_one_line(tmp_path: Path) -> None:
    output = _cli(tmp_path / "empty", "db", "backup", code=1)

    assert "no database at" in output
    assert output.count("\n") == 1


def test_backup_never_starts_over_while_a_writer_commits(
    writer: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backup, "STEP_PAGES", 16)
    seen: list[int] = []

    backup.backup_database(
        writer, tmp_path / "b.sqlite3", lambda done, _: seen.append(done)
    )

    assert len(seen) > 10
    assert seen == sorted(seen), "the copy restarted from the first page"
