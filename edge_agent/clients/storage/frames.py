"""Storage client: the frame queue table, written in group commits."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime

from edge_agent.clients.storage.database import Database, StorageError
from edge_agent.clients.storage.rows import optional_time
from edge_agent.clock import from_text, to_text
from edge_agent.observability.tracing import current as current_trace

_INSERT = """
INSERT INTO frames (id, camera_id, sha256, size_bytes, format, width, height,
                    captured_at, received_at, camera_seq, clock_skew_s,
                    traceparent)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
_RECENT_TWIN = """
SELECT * FROM frames
WHERE camera_id = ? AND sha256 = ? AND received_at >= ?
ORDER BY received_at DESC LIMIT 1
"""
_GET = "SELECT * FROM frames WHERE id = ?"
_QUEUED = "SELECT * FROM frames WHERE state = 'queued' ORDER BY received_at, id"
_BACKLOG = """
SELECT count(*) AS frames, coalesce(sum(size_bytes), 0) AS bytes
FROM frames WHERE state = 'queued'
"""


def _traceparent_now() -> str | None:
    trace = current_trace()
    return None if trace is None else trace.traceparent


@dataclass(frozen=True, slots=True)
class FrameRecord:
    """A frame as the queue knows it; its bytes live in the spool folder."""

    id: str
    camera_id: str
    sha256: str
    size_bytes: int
    format: str
    width: int
    height: int
    captured_at: datetime
    received_at: datetime
    camera_seq: int | None = None
    clock_skew_s: float | None = None
    state: str = "queued"
    decided_at: datetime | None = None
    # The trace of the request that brought the frame, taken where the record
    # is made (inside that request).
    traceparent: str | None = field(default_factory=_traceparent_now)


class FrameRepository:
    """Inserts arriving within ``window_s`` of each other share one commit.

    Each commit is fsynced (synchronous=FULL), so batching frames is what
    lets many cameras be acknowledged durably at once.
    """

    def __init__(self, db: Database, window_s: float) -> None:
        self._db = db
        self._window_s = window_s
        self._pending: list[tuple[FrameRecord, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def add(self, frame: FrameRecord) -> None:
        """Return once the frame's row is committed (with others arriving with it)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((frame, done))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_soon(), name="frame-commit")
        await asyncio.shield(done)

    async def _flush_soon(self) -> None:
        try:
            await asyncio.sleep(self._window_s)
        except asyncio.CancelledError:
            _settle(self._take(), StorageError("the frame queue is shutting down"))
            raise
        batch = self._take()
        try:
            await self._db.execute_many(_INSERT, [_row(frame) for frame, _ in batch])
        except Exception as exc:
            # Every waiting request answers with the failure; nobody awaits
            # this task, so raising it again here would only be lost.
            _settle(batch, exc)
            return
        except BaseException:
            _settle(batch, StorageError("the frame commit was interrupted"))
            raise
        _settle(batch, None)

    def _take(self) -> list[tuple[FrameRecord, asyncio.Future[None]]]:
        batch, self._pending = self._pending, []
        self._flusher = None
        return batch

    async def recent_twin(
        self, camera_id: str, sha256: str, since: datetime
    ) -> FrameRecord | None:
        """An identical frame of this camera received since ``since``."""
        row = await self._db.fetch_one(
            _RECENT_TWIN, (camera_id, sha256, to_text(since))
        )
        return None if row is None else _record(row)

    async def get(self, frame_id: str) -> FrameRecord | None:
        row = await self._db.fetch_one(_GET, (frame_id,))
        return None if row is None else _record(row)

    async def queued(self) -> list[FrameRecord]:
        return [_record(row) for row in await self._db.fetch_all(_QUEUED)]

    async def backlog(self) -> tuple[int, int]:
        """Frames queued and their bytes."""
        row = await self._db.fetch_one(_BACKLOG)
        return (0, 0) if row is None else (int(row["frames"]), int(row["bytes"]))


def _settle(
    batch: list[tuple[FrameRecord, asyncio.Future[None]]], error: Exception | None
) -> None:
    for _, done in batch:
        if done.done():
            continue
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error)


def _row(frame: FrameRecord) -> tuple[object, ...]:
    return (
        frame.id,
        frame.camera_id,
        frame.sha256,
        frame.size_bytes,
        frame.format,
        frame.width,
        frame.height,
        to_text(frame.captured_at),
        to_text(frame.received_at),
        frame.camera_seq,
        frame.clock_skew_s,
        frame.traceparent,
    )


def _record(row: sqlite3.Row) -> FrameRecord:
    return FrameRecord(
        id=row["id"],
        camera_id=row["camera_id"],
        sha256=row["sha256"],
        size_bytes=row["size_bytes"],
        format=row["format"],
        width=row["width"],
        height=row["height"],
        captured_at=from_text(row["captured_at"]),
        received_at=from_text(row["received_at"]),
        camera_seq=row["camera_seq"],
        clock_skew_s=row["clock_skew_s"],
        state=row["state"],
        decided_at=optional_time(row["decided_at"]),
        traceparent=row["traceparent"],
    )
