"""Storage client: the camera registry, and each camera's latest health view."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import time
from typing import Any

from edge_agent.clients.storage.database import Database
from edge_agent.clients.storage.health import CameraHealth, camera_health_from_row
from edge_agent.clients.storage.rows import optional_text, optional_time
from edge_agent.clock import from_text, to_text
from edge_agent.errors import Conflict
from edge_agent.models import ActiveWindow, Camera, Direction

_COLUMNS = (
    "name, direction, location, expected_interval_s, match_threshold, probe_url, "
    "schedule, enabled, removed_at, updated_at"
)
_INSERT_CAMERA = f"""
INSERT INTO cameras (id, created_at, {_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?,
                                                        ?, ?, ?)
"""
_UPDATE_CAMERA = """
UPDATE cameras SET name = ?, direction = ?, location = ?, expected_interval_s = ?,
    match_threshold = ?, probe_url = ?, schedule = ?, enabled = ?, removed_at = ?,
    updated_at = ?
WHERE id = ?
"""
_GET = "SELECT * FROM cameras WHERE id = ?"
_ACTIVE = "SELECT * FROM cameras WHERE removed_at IS NULL ORDER BY id"
_EVERY = "SELECT * FROM cameras ORDER BY id"
# The health columns are renamed so that a camera without a row reads as NULLs.
_WITH_HEALTH = """
SELECT c.*, h.camera_id AS health_id, h.state, h.since, h.last_frame_at,
       h.last_probe_at, h.last_error, h.activity, h.updated_at AS health_updated_at
FROM cameras AS c LEFT JOIN camera_health AS h ON h.camera_id = c.id
WHERE c.removed_at IS NULL
ORDER BY c.id
"""


@dataclass(frozen=True, slots=True)
class CameraStatus:
    """A camera and what the health monitor last stored about it, if anything."""

    camera: Camera
    health: CameraHealth | None


class CameraRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, camera: Camera) -> None:
        row = (camera.id, to_text(camera.created_at), *_mutable(camera))
        try:
            async with self._db.transaction() as conn:
                await conn.execute(_INSERT_CAMERA, row)
        except sqlite3.IntegrityError as exc:
            raise Conflict(f"camera {camera.id!r} already exists") from exc

    async def save(self, camera: Camera) -> bool:
        """Store every field but the id and creation time; False if absent."""
        async with self._db.transaction() as conn:
            cursor = await conn.execute(_UPDATE_CAMERA, (*_mutable(camera), camera.id))
        return cursor.rowcount > 0

    async def find(self, camera_id: str) -> Camera | None:
        """The camera, removed or not."""
        row = await self._db.fetch_one(_GET, (camera_id,))
        return None if row is None else _camera(row)

    async def all(self, *, include_removed: bool = False) -> list[Camera]:
        rows = await self._db.fetch_all(_EVERY if include_removed else _ACTIVE)
        return [_camera(row) for row in rows]

    async def statuses(self) -> list[CameraStatus]:
        """Every camera not removed, with its stored health view."""
        rows = await self._db.fetch_all(_WITH_HEALTH)
        return [CameraStatus(_camera(row), _health(row)) for row in rows]


def _mutable(camera: Camera) -> tuple[Any, ...]:
    return (
        camera.name,
        camera.direction.value,
        camera.location,
        camera.expected_interval_s,
        camera.match_threshold,
        camera.probe_url,
        schedule_to_text(camera.schedule),
        int(camera.enabled),
        optional_text(camera.removed_at),
        optional_text(camera.updated_at),
    )


def schedule_to_text(schedule: tuple[ActiveWindow, ...]) -> str | None:
    if not schedule:
        return None
    return json.dumps([window_to_json(w) for w in schedule], separators=(",", ":"))


def window_to_json(window: ActiveWindow) -> dict[str, Any]:
    return {
        "days": list(window.days),
        "start": window.start.isoformat(timespec="minutes"),
        "end": window.end.isoformat(timespec="minutes"),
    }


def _schedule(text: str | None) -> tuple[ActiveWindow, ...]:
    if not text:
        return ()
    return tuple(
        ActiveWindow(
            tuple(item["days"]),
            time.fromisoformat(item["start"]),
            time.fromisoformat(item["end"]),
        )
        for item in json.loads(text)
    )


def _camera(row: sqlite3.Row) -> Camera:
    return Camera(
        id=row["id"],
        name=row["name"],
        direction=Direction(row["direction"]),
        created_at=from_text(row["created_at"]),
        location=row["location"],
        expected_interval_s=row["expected_interval_s"],
        match_threshold=row["match_threshold"],
        probe_url=row["probe_url"],
        schedule=_schedule(row["schedule"]),
        enabled=bool(row["enabled"]),
        removed_at=optional_time(row["removed_at"]),
        updated_at=optional_time(row["updated_at"]),
    )


def _health(row: sqlite3.Row) -> CameraHealth | None:
    if row["health_id"] is None:
        return None
    view = {
        "camera_id": row["health_id"],
        "state": row["state"],
        "since": row["since"],
        "last_frame_at": row["last_frame_at"],
        "last_probe_at": row["last_probe_at"],
        "last_error": row["last_error"],
        "activity": row["activity"],
        "updated_at": row["health_updated_at"],
    }
    return camera_health_from_row(view)
