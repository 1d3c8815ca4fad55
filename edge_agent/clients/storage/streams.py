"""Storage client: the registry of video streams and each reader's last report."""

from __future__ import annotations

import enum
import sqlite3
from dataclasses import dataclass
from datetime import datetime

from edge_agent.clients.storage.database import Database
from edge_agent.clients.storage.rows import optional_time
from edge_agent.clock import from_text, to_text
from edge_agent.errors import Conflict

_INSERT = """
INSERT INTO streams (id, camera_id, url, sample_every_s, enabled, created_at, state)
VALUES (?, ?, ?, ?, ?, ?, ?)
"""
_SELECT = "SELECT * FROM streams"
_GET = f"{_SELECT} WHERE id = ?"
_ALL = f"{_SELECT} ORDER BY camera_id"
_DELETE = "DELETE FROM streams WHERE id = ?"
_SET_STATE = "UPDATE streams SET state = ?, last_error = ? WHERE id = ?"
_SET_LAST_FRAME = "UPDATE streams SET last_frame_at = ? WHERE id = ?"


class StreamState(enum.StrEnum):
    """Where a stream's reader is; stored in ``streams.state``."""

    STARTING = "starting"
    STREAMING = "streaming"
    RECONNECTING = "reconnecting"
    STOPPED = "stopped"
    FAILED = "failed"
    FINISHED = "finished"  # a file source read to its end


@dataclass(frozen=True, slots=True)
class Stream:
    """A video source the appliance reads one camera's frames from."""

    id: str
    camera_id: str
    url: str
    sample_every_s: float
    enabled: bool
    created_at: datetime
    state: StreamState = StreamState.STOPPED
    last_error: str | None = None
    last_frame_at: datetime | None = None


class StreamRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, stream: Stream) -> None:
        """Store a new stream; :class:`Conflict` if its camera already has one."""
        row = (
            stream.id,
            stream.camera_id,
            stream.url,
            stream.sample_every_s,
            int(stream.enabled),
            to_text(stream.created_at),
            stream.state.value,
        )
        try:
            async with self._db.transaction() as conn:
                await conn.execute(_INSERT, row)
        except sqlite3.IntegrityError as exc:
            raise Conflict(
                f"camera {stream.camera_id!r} already has a stream",
                camera_id=stream.camera_id,
            ) from exc

    async def find(self, stream_id: str) -> Stream | None:
        row = await self._db.fetch_one(_GET, (stream_id,))
        return None if row is None else _stream(row)

    async def all(self) -> list[Stream]:
        rows = await self._db.fetch_all(_ALL)
        return [_stream(row) for row in rows]

    async def delete(self, stream_id: str) -> bool:
        """Delete the stream; False when there was none."""
        async with self._db.transaction() as conn:
            cursor = await conn.execute(_DELETE, (stream_id,))
            return cursor.rowcount > 0

    async def set_state(
        self, stream_id: str, state: StreamState, last_error: str | None
    ) -> bool:
        """Record the reader's state; False when the stream no longer exists."""
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                _SET_STATE, (state.value, last_error, stream_id)
            )
            return cursor.rowcount > 0

    async def set_last_frame(self, stream_id: str, at: datetime) -> bool:
        """Record when the stream last delivered a frame; False when it is gone."""
        async with self._db.transaction() as conn:
            cursor = await conn.execute(_SET_LAST_FRAME, (to_text(at), stream_id))
            return cursor.rowcount > 0


def _stream(row: sqlite3.Row) -> Stream:
    return Stream(
        id=row["id"],
        camera_id=row["camera_id"],
        url=row["url"],
        sample_every_s=row["sample_every_s"],
        enabled=bool(row["enabled"]),
        created_at=from_text(row["created_at"]),
        state=StreamState(row["state"]),
        last_error=row["last_error"],
        last_frame_at=optional_time(row["last_frame_at"]),
    )
