"""The ``cloud-sync`` commands, run in process against a SQLite database."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cloud_sync import __version__
from cloud_sync.cli import app
from cloud_sync.protocol import Stream
from cloud_sync.server.store.sqlite import SqliteStore
from cloud_sync.server.tokens import token_hash
from tests.cloud_sync.helpers import prepared, records

runner = CliRunner()


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A config file whose database lives in the test's folder."""
    path = tmp_path / "cloud-sync.toml"
    path.write_text(f'[database]\nurl = "sqlite://{tmp_path / "c.sqlite3"}"\n')
    return path


def _run(*args: str, config: Path | None = None) -> tuple[int, str]:
    extra = ["--config", str(config)] if config else []
    result = runner.invoke(app, [*args, *extra])
    return result.exit_code, result.output


def _token_of(output: str) -> str:
    return output.strip().splitlines()[-1]


def _site_for(config: Path, token: str) -> str | None:
    async def lookup() -> str | None:
        store = SqliteStore(config.parent / "c.sqlite3")
        await store.open()
        try:
            return await store.site_for_token(token_hash(token))
        finally:
            await store.close()

    return asyncio.run(lookup())


def test_version() -> None:
    assert _run("version") == (0, f"{__version__}\n")


def test_add_prints_the_token_once_and_keeps_only_its_hash(config: Path) -> None:
    code, output = _run("sites", "add", "site-a", "--name", "Depot", config=config)
    token = _token_of(output)
    _, listing = _run("sites", "list", config=config)

    with closing(sqlite3.connect(config.parent / "c.sqlite3")) as conn:
        kept = conn.execute("SELECT token_hash FROM sites").fetchall()
    assert code == 0
    assert token.startswith("cs_")
    assert kept == [(token_hash(token),)]
    assert "Depot" in listing
    assert token not in listing


def test_rotate_token_retires_the_old_one(config: Path) -> None:
    old = _token_of(_run("sites", "add", "site-a", config=config)[1])

    code, output = _run("sites", "rotate-token", "site-a", config=config)
    new = _token_of(output)

    assert code == 0
    assert _site_for(config, old) is None
    assert _site_for(config, new) == "site-a"


@pytest.mark.parametrize(
    "args",
    [
        ("sites", "add", "bad site!"),
        ("sites", "rotate-token", "nowhere"),
        ("sites", "remove", "nowhere", "--yes"),
    ],
    ids=["bad-id", "rotate-unknown", "remove-unknown"],
)
def test_refusals_exit_1_with_a_message(config: Path, args: tuple[str, ...]) -> None:
    code, output = _run(*args, config=config)

    assert code == 1
    assert "Error:" in output


def test_duplicate_site_is_refused(config: Path) -> None:
    _run("sites", "add", "site-a", config=config)

    code, output = _run("sites", "add", "site-a", config=config)

    assert (code, "already registered" in output) == (1, True)


def test_remove_asks_unless_told(config: Path) -> None:
    _run("sites", "add", "site-a", config=config)

    kept = runner.invoke(
        app, ["sites", "remove", "site-a", "--config", str(config)], input="n\n"
    )
    removed = _run("sites", "remove", "site-a", "--yes", config=config)

    assert kept.exit_code == 1
    assert removed[0] == 0
    assert "site-a" not in _run("sites", "list", config=config)[1]


def _ingest(config: Path) -> None:
    async def ingest() -> None:
        store = SqliteStore(config.parent / "c.sqlite3")
        await store.open()
        try:
            items = records("site-a", Stream.ATTENDANCE, 1, 4)
            await store.apply_batch(
                prepared("site-a", Stream.ATTENDANCE, items, site_head=6)
            )
        finally:
            await store.close()

    asyncio.run(ingest())


def test_status_shows_acked_seq_and_lag(config: Path) -> None:
    _run("sites", "add", "site-a", config=config)
    _ingest(config)

    code, output = _run("sites", "status", "--json", config=config)
    table = _run("sites", "status", config=config)[1]

    [site] = json.loads(output)["sites"]
    assert code == 0
    assert site["streams"]["attendance"]["acked_seq"] == 4
    assert site["streams"]["attendance"]["lag"] == 2
    assert site["chain"]["state"] == "ok"
    assert "site-a" in table


def test_attendance_export_writes_filtered_csv(config: Path, tmp_path: Path) -> None:
    _run("sites", "add", "site-a", config=config)
    _ingest(config)
    target = tmp_path / "out.csv"

    code, _ = _run(
        "attendance", "export", "--person", "p1", "--output", str(target), config=config
    )

    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert code == 0
    assert [(r["seq"], r["person_id"]) for r in rows] == [("1", "p1"), ("4", "p1")]


def test_admin_token_prints_a_matching_hash() -> None:
    code, output = _run("admin-token")

    token = output.splitlines()[0].removeprefix("token: ")
    assert code == 0
    assert f'token_sha256 = "{token_hash(token)}"' in output


def test_bad_config_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[server]\nport = "many"\n')

    code, output = _run("sites", "list", config=path)

    assert code == 2
    assert "server.port" in output
