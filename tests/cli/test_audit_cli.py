"""Site admin CLI: ``audit list`` and ``audit verify`` on a real database file."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from contextlib import closing

from typer.testing import CliRunner, Result

from edge_agent.cli.audit import app
from edge_agent.clients.storage.audit import AuditRepository
from edge_agent.clients.storage.database import Database
from edge_agent.clock import SystemClock
from edge_agent.config import Settings
from edge_agent.models import Principal, PrincipalKind, Role
from edge_agent.services.audit import AuditAction, AuditService

runner = CliRunner()

ALICE = Principal(PrincipalKind.ACCOUNT, "alice", Role.ADMIN)


def _record_entries(settings: Settings) -> None:
    """Three entries, as the daemon would have written them to the same file."""

    async def record() -> None:
        db = Database(settings.storage.database_path)
        await db.open()
        service = AuditService(AuditRepository(db), SystemClock())
        await service.record(ALICE, AuditAction.LOGIN, target="account:alice")
        await service.record(None, AuditAction.LOGIN_FAILED, outcome="failure")
        await service.record(
            ALICE, AuditAction.CAMERA_REGISTERED, details={"direction": "entry"}
        )
        await db.close()

    asyncio.run(record())


def _invoke(settings: Settings, *args: str, columns: int = 80) -> Result:
    data_dir = str(settings.storage.data_dir)
    env = {"COLUMNS": str(columns)}
    return runner.invoke(app, [*args, "--data-dir", data_dir], env=env)


def test_list_prints_json_with_a_cursor(settings: Settings) -> None:
    _record_entries(settings)

    first = _invoke(settings, "list", "--limit", "2", "--json")
    rest = _invoke(settings, "list", "--after", "2", "--json")

    assert first.exit_code == 0, first.output
    body = json.loads(first.stdout)
    assert [e["seq"] for e in body["entries"]] == [1, 2]
    assert body["next_cursor"] == 2
    assert body["entries"][1]["actor"] == "anonymous"
    assert body["entries"][1]["prev_hash"] == body["entries"][0]["hash"]
    assert [e["seq"] for e in json.loads(rest.stdout)["entries"]] == [3]


def test_list_filters_by_actor_and_action(settings: Settings) -> None:
    _record_entries(settings)

    by_actor = _invoke(settings, "list", "--actor", "account:alice", "--json")
    by_action = _invoke(settings, "list", "--action", "auth.login_failed", "--json")

    assert [e["seq"] for e in json.loads(by_actor.stdout)["entries"]] == [1, 3]
    assert [e["seq"] for e in json.loads(by_action.stdout)["entries"]] == [2]


def test_list_table_shows_whole_values(settings: Settings) -> None:
    _record_entries(settings)

    wide = _invoke(settings, "list", "--limit", "2", columns=200)
    narrow = _invoke(settings, "list", "--limit", "2", columns=60)

    assert wide.exit_code == 0, wide.output
    assert "account:alice" in wide.stdout
    assert "auth.login_failed" in wide.stdout
    assert wide.stdout.endswith("More entries: --after 2\n")
    # A narrow terminal folds cells onto more lines but never cuts them short.
    assert "…" not in narrow.stdout


def test_verify_reports_an_intact_chain(settings: Settings) -> None:
    _record_entries(settings)

    result = _invoke(settings, "verify")

    assert result.exit_code == 0, result.output
    assert result.stdout == "Audit chain intact: 3 entries\n"


def test_verify_of_an_empty_log_is_intact(settings: Settings) -> None:
    result = _invoke(settings, "verify")

    assert result.exit_code == 0, result.output
    assert result.stdout == "Audit chain intact: 0 entries\n"


def test_verify_names_the_first_bad_entry_and_exits_1(settings: Settings) -> None:
    _record_entries(settings)
    with closing(sqlite3.connect(settings.storage.database_path)) as conn, conn:
        conn.execute("UPDATE audit_log SET outcome = 'success' WHERE seq = 2")

    result = _invoke(settings, "verify")

    assert result.exit_code == 1
    assert result.output.count("\n") == 1
    assert "seq 2" in result.output
    assert "(edited)" in result.output
    assert "Traceback" not in result.output
