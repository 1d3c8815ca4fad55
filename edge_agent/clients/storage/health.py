"""Storage client: what the health monitor concluded (camera_health, self_checks).

The monitor writes these rows in the same transaction as the events a change
of state raises (see :func:`outbox.append`), so a state and its event are
committed together or not at all. The CLI reads them from another process.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from edge_agent.clients.storage.database import Database
from edge_agent.clients.storage.outbox import NewRecord, append_all
from edge_agent.clients.storage.rows import optional_text, optional_time
from edge_agent.clock import from_text, to_text

_UPSERT_CAMERA = """
INSERT INTO camera_health (camera_id, state, since, last_frame_at, last_probe_at,
                           last_error, activity, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (camera_id) DO UPDATE SET
    state = excluded.state, since = excluded.since,
    last_frame_at = excluded.last_frame_at, last_probe_at = excluded.last_probe_at,
    last_error = excluded.last_error, activity = excluded.activity,
    updated_at = excluded.updated_at
"""
_UPSERT_CHECK = """
INSERT INTO self_checks (name, state, since, detail, updated_at)
VALUES (?, ?, ?, ?, ?)
ON CONFLICT (name) DO UPDATE SET
    state = excluded.state, since = excluded.since, detail = excluded.detail,
    updated_at = excluded.updated_at
"""


@dataclass(frozen=True, slots=True)
class CameraHealth:
    """One camera's latest view; ``activity`` holds counters and the grade."""

    camera_id: str
    state: str
    since: datetime
    updated_at: datetime
    last_frame_at: datetime | None = None
    last_probe_at: datetime | None = None
    last_error: str | None = None
    activity: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SelfCheckRow:
    """One self-check: ``failing`` once raised, ``ok`` once cleared."""

    name: str
    state: str
    since: datetime
    updated_at: datetime
    detail: str | None = None


class HealthRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def camera_health(self) -> list[CameraHealth]:
        rows = await self._db.fetch_all("SELECT * FROM camera_health")
        return [camera_health_from_row(row) for row in rows]

    async def self_checks(self) -> list[SelfCheckRow]:
        rows = await self._db.fetch_all("SELECT * FROM self_checks ORDER BY name")
        return [_check(row) for row in rows]

    async def save_cameras(
        self, views: Iterable[CameraHealth], events: Iterable[NewRecord]
    ) -> None:
        """Store every view and append every event in one transaction."""
        async with self._db.transaction() as conn:
            await conn.executemany(_UPSERT_CAMERA, [_camera_row(v) for v in views])
            await append_all(conn, events)

    async def save_checks(
        self, checks: Iterable[SelfCheckRow], events: Iterable[NewRecord]
    ) -> None:
        """Store every check and append every event in one transaction."""
        async with self._db.transaction() as conn:
            await conn.executemany(_UPSERT_CHECK, [_check_row(c) for c in checks])
            await append_all(conn, events)

    async def ping(self) -> None:
        """A real query on the database; raises when it cannot be answered."""
        await self._db.fetch_one("SELECT COUNT(*) FROM self_checks")


def _camera_row(view: CameraHealth) -> tuple[Any, ...]:
    return (
        view.camera_id,
        view.state,
        to_text(view.since),
        optional_text(view.last_frame_at),
        optional_text(view.last_probe_at),
        view.last_error,
        json.dumps(view.activity, sort_keys=True, separators=(",", ":")),
        to_text(view.updated_at),
    )


def _check_row(check: SelfCheckRow) -> tuple[Any, ...]:
    return (
        check.name,
        check.state,
        to_text(check.since),
        check.detail,
        to_text(check.updated_at),
    )


def camera_health_from_row(row: sqlite3.Row | Mapping[str, Any]) -> CameraHealth:
    """A view from a ``camera_health`` row, or a mapping with its columns."""
    return CameraHealth(
        camera_id=row["camera_id"],
        state=row["state"],
        since=from_text(row["since"]),
        updated_at=from_text(row["updated_at"]),
        last_frame_at=optional_time(row["last_frame_at"]),
        last_probe_at=optional_time(row["last_probe_at"]),
        last_error=row["last_error"],
        activity=json.loads(row["activity"] or "{}"),
    )


def _check(row: sqlite3.Row) -> SelfCheckRow:
    return SelfCheckRow(
        name=row["name"],
        state=row["state"],
        since=from_text(row["since"]),
        updated_at=from_text(row["updated_at"]),
        detail=row["detail"],
    )
