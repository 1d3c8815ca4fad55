"""Site admin CLI: ``events list|sinks|dead-letters|redrive`` on a real database."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner, Result

from edge_agent.cli.events import app
from edge_agent.clients.storage.database import Database
from edge_agent.clients.storage.deliveries import DeliveryRepository
from edge_agent.clients.storage.outbox import NewRecord, OutboxRepository
from edge_agent.config import Settings, load_settings
from edge_agent.models import EVENTS_STREAM

runner = CliRunner()
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
CONFIG = """
[[events.webhooks]]
name = "vms"
url = "http://127.0.0.1:9/hook"
secret = "s"
"""


def _prepare(settings: Settings) -> None:
    """Three events, the second dead for the vms webhook."""

    async def write() -> None:
        db = Database(settings.storage.database_path)
        await db.open()
        outbox = OutboxRepository(db)
        for event_type in ("camera.offline", "face.unknown", "camera.online"):
            payload = {"camera_id": "gate"}
            await outbox.add(NewRecord(EVENTS_STREAM, event_type, NOW, payload))
        deliveries = DeliveryRepository(db)
        cursor = await deliveries.cursor("sink:webhook:vms", EVENTS_STREAM, NOW)
        await deliveries.advance(cursor.consumer, 1, NOW, delivered=True)
        await deliveries.dead_letter(cursor, 2, 10, "receiver answered HTTP 500", NOW)
        await db.close()

    asyncio.run(write())


def _invoke(config: str, settings: Settings, *args: str) -> Result:
    data_dir = str(settings.storage.data_dir)
    command = [*args, "--config", config, "--data-dir", data_dir]
    return runner.invoke(app, command, env={"COLUMNS": "160"})


def test_list_sinks_dead_letters_and_redrive(tmp_path: Path) -> None:
    config = tmp_path / "edge.toml"
    config.write_text(CONFIG)
    settings = load_settings(config, {"storage": {"data_dir": tmp_path / "data"}})
    _prepare(settings)

    listed = _invoke(str(config), settings, "list", "--type", "face.unknown", "--json")
    sinks = _invoke(str(config), settings, "sinks", "--json")
    table = _invoke(str(config), settings, "sinks")
    dead = _invoke(str(config), settings, "dead-letters", "--json")
    redrive = _invoke(str(config), settings, "redrive", "webhook:vms", "--seq", "2")
    again = _invoke(
        str(config), settings, "dead-letters", "--state", "redrive", "--json"
    )
    missing = _invoke(str(config), settings, "redrive", "webhook:nope")

    assert listed.exit_code == 0, listed.output
    assert [e["seq"] for e in json.loads(listed.stdout)["events"]] == [2]
    (sink,) = json.loads(sinks.stdout)
    assert (sink["name"], sink["cursor"], sink["lag"], sink["dead_letters"]) == (
        "webhook:vms",
        2,
        1,
        1,
    )
    assert "webhook:vms" in table.stdout
    assert [(d["seq"], d["state"]) for d in json.loads(dead.stdout)] == [(2, "dead")]
    assert "Queued 1 dead letter(s)" in redrive.stdout
    assert [d["seq"] for d in json.loads(again.stdout)] == [2]
    assert missing.exit_code == 1
