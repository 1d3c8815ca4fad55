"""Site admin CLI: ``cameras add|update|enable|disable|remove|status`` on a real
database file, with health rows as the daemon's monitor would store them."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

from typer.testing import CliRunner, Result

from edge_agent.cli.cameras import app
from edge_agent.clients.storage.database import Database
from edge_agent.clients.storage.health import CameraHealth, HealthRepository
from edge_agent.config import Settings

runner = CliRunner()
AT = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)


def _invoke(settings: Settings, *args: str, columns: int = 160) -> Result:
    data_dir = str(settings.storage.data_dir)
    result = runner.invoke(
        app, [*args, "--data-dir", data_dir], env={"COLUMNS": str(columns)}
    )
    return result


def _json(settings: Settings, *args: str) -> Any:
    result = _invoke(settings, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _store_health(settings: Settings, camera_id: str, state: str) -> None:
    """A health row, as the daemon's liveness job writes it."""

    async def store() -> None:
        db = Database(settings.storage.database_path)
        await db.open()
        view = CameraHealth(
            camera_id,
            state,
            AT,
            AT,
            last_frame_at=AT,
            last_error="poor-quality: too dark",
            activity={"accepted_last_minute": 12, "grade": "fair"},
        )
        await HealthRepository(db).save_cameras([view], [])
        await db.close()

    asyncio.run(store())


def test_a_camera_is_added_changed_and_listed(settings: Settings) -> None:
    schedule = json.dumps([{"days": [0, 1, 2, 3, 4], "start": "07:00", "end": "19:00"}])
    added = _json(
        settings,
        "add",
        "gate",
        "--location",
        "North",
        "--interval",
        "5",
        "--threshold",
        "0.9",
        "--schedule",
        schedule,
    )
    assert added["api_key"]
    assert added["schedule"][0]["start"] == "07:00"

    changed = _json(
        settings,
        "update",
        "gate",
        "--name",
        "Main gate",
        "--clear",
        "location",
        "--clear",
        "schedule",
    )
    assert (changed["name"], changed["location"], changed["schedule"]) == (
        "Main gate",
        None,
        [],
    )
    assert changed["match_threshold"] == 0.9
    assert [c["id"] for c in _json(settings, "list")] == ["gate"]


def test_enable_disable_and_remove(settings: Settings) -> None:
    _json(settings, "add", "gate")

    assert _invoke(settings, "disable", "gate").exit_code == 0
    assert _json(settings, "list")[0]["enabled"] is False
    assert _invoke(settings, "enable", "gate").exit_code == 0
    assert _json(settings, "list")[0]["enabled"] is True
    removed = _invoke(settings, "remove", "gate")
    assert removed.exit_code == 0
    assert "Removed camera gate" in removed.stdout
    assert _json(settings, "list") == []

    again = _invoke(settings, "disable", "gate")
    assert again.exit_code == 1
    assert "no camera" in again.output


def test_bad_input_is_one_line_and_an_exit_code(settings: Settings) -> None:
    _json(settings, "add", "gate")
    bad_json = _invoke(settings, "update", "gate", "--schedule", "[{")
    bad_day = _invoke(
        settings,
        "update",
        "gate",
        "--schedule",
        '[{"days": [8], "start": "07:00", "end": "08:00"}]',
    )
    bad_threshold = _invoke(settings, "update", "gate", "--threshold", "3")
    assert (bad_json.exit_code, bad_day.exit_code, bad_threshold.exit_code) == (2, 2, 1)
    assert "not JSON" in bad_json.output
    assert "Monday" in bad_day.output
    assert "threshold" in bad_threshold.output


def test_status_shows_what_the_monitor_stored(settings: Settings) -> None:
    _json(settings, "add", "gate", "--location", "North")
    _json(settings, "add", "yard")
    _store_health(settings, "gate", "offline")

    body = {c["camera_id"]: c for c in _json(settings, "status")}
    table = _invoke(settings, "status")

    assert body["gate"]["state"] == "offline"
    assert body["gate"]["grade"] == "fair"
    assert body["gate"]["last_frame_at"].startswith("2024-03-04T09:00")
    assert body["yard"]["state"] is None
    assert table.exit_code == 0, table.output
    assert "offline" in table.stdout
    assert "North" in table.stdout
    assert "unknown" in table.stdout


def test_status_watch_redraws_the_table(settings: Settings) -> None:
    _json(settings, "add", "gate")
    _store_health(settings, "gate", "online")

    result = _invoke(settings, "status", "--watch", "--refresh", "0.1", "--times", "2")

    assert result.exit_code == 0, result.output
    assert "online" in result.stdout
