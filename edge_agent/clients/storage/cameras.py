"""Storage client: the camera registry."""

from __future__ import annotations

import sqlite3

from edge_agent.clients.storage.database import Database
from edge_agent.clock import from_text, to_text
from edge_agent.errors import Conflict
from edge_agent.models import Camera, Direction

_INSERT_CAMERA = """
INSERT INTO cameras (id, name, direction, created_at) VALUES (?, ?, ?, ?)
"""


class CameraRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, camera: Camera) -> None:
        row = (
            camera.id,
            camera.name,
            camera.direction.value,
            to_text(camera.created_at),
        )
        try:
            async with self._db.transaction() as conn:
                await conn.execute(_INSERT_CAMERA, row)
        except sqlite3.IntegrityError as exc:
            raise Conflict(f"camera {camera.id!r} already exists") from exc

    async def find(self, camera_id: str) -> Camera | None:
        sql = "SELECT * FROM cameras WHERE id = ?"
        row = await self._db.fetch_one(sql, (camera_id,))
        return None if row is None else _camera(row)

    async def all(self) -> list[Camera]:
        rows = await self._db.fetch_all("SELECT * FROM cameras ORDER BY id")
        return [_camera(row) for row in rows]


def _camera(row: sqlite3.Row) -> Camera:
    return Camera(
        id=row["id"],
        name=row["name"],
        direction=Direction(row["direction"]),
        created_at=from_text(row["created_at"]),
    )
