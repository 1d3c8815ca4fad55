"""Frame pipeline service: spooled frames -> decode -> recognize -> decide -> commit.

Workers take frames from the queue, decode and check them off the event loop,
and ask the recognizer; a single committer then decides whatever frames are
ready in one batch and one transaction, which also takes them off the queue,
and only then removes their spool files. A frame is therefore processed at
least once (a crash before the commit repeats it) and decided exactly once
(the commit only takes frames still queued). While the recognizer is down,
workers hold their frames and retry with backoff; the rest wait in the spool.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from edge_agent.clients.recognition.base import (
    Recognizer,
    RecognizerCallFailed,
    RecognizerKeyRejected,
)
from edge_agent.clients.storage.frames import FrameRecord, FrameRepository
from edge_agent.clients.storage.spool import SpoolFolder
from edge_agent.clock import Clock
from edge_agent.config import ImagingSettings, SpoolSettings
from edge_agent.errors import InvalidInput, PoorQuality, Unavailable
from edge_agent.imaging.pool import DecodePool
from edge_agent.models import Camera, Frame, Outcome, RecognizedFace
from edge_agent.observability import tracing
from edge_agent.observability.metrics import Metrics
from edge_agent.services.attendance import (
    AttendanceService,
    FrameDecisions,
    FrameFindings,
)
from edge_agent.services.cameras import CameraService

logger = logging.getLogger(__name__)

_FIRST_RETRY_WAIT_S = 0.5
_MAX_RETRY_WAIT_S = 30.0
# After an unexpected failure (a fault, not a refusal), wait before retrying.
_FAULT_PAUSE_S = 1.0


class SpoolFull(Unavailable):
    slug = "spool-full"
    title = "Frame spool full"
    retry_after_s = 2


class InsufficientStorage(Unavailable):
    """The disk is nearly full: new frames are refused, so that nothing already
    accepted or not yet synced has to be deleted to make room."""

    slug = "insufficient-storage"
    status = 507
    title = "Insufficient storage"
    retry_after_s = 60


class ShuttingDown(Unavailable):
    slug = "shutting-down"
    title = "The appliance is shutting down"


@dataclass(slots=True)
class Backlog:
    frames: int = 0
    bytes: int = 0


@dataclass(slots=True)
class _Ready:
    record: FrameRecord
    findings: FrameFindings


@dataclass(slots=True)
class _Waiters:
    futures: dict[str, list[asyncio.Future[FrameDecisions]]] = field(
        default_factory=dict
    )

    def expect(self, frame_id: str) -> asyncio.Future[FrameDecisions]:
        future: asyncio.Future[FrameDecisions] = (
            asyncio.get_running_loop().create_future()
        )
        self.futures.setdefault(frame_id, []).append(future)
        return future

    def resolve(self, frame_id: str, decided: FrameDecisions) -> None:
        for future in self.futures.pop(frame_id, []):
            if not future.done():
                future.set_result(decided)

    def fail_all(self, error: Exception) -> None:
        for futures in self.futures.values():
            for future in futures:
                if not future.done():
                    future.set_exception(error)
        self.futures.clear()


class FramePipeline:
    def __init__(
        self,
        spool: SpoolFolder,
        frames: FrameRepository,
        cameras: CameraService,
        decoder: DecodePool,
        recognizer: Recognizer,
        attendance: AttendanceService,
        settings: SpoolSettings,
        imaging: ImagingSettings,
        metrics: Metrics,
        clock: Clock,
    ) -> None:
        self._spool = spool
        self._frames = frames
        self._cameras = cameras
        self._decoder = decoder
        self._recognizer = recognizer
        self._attendance = attendance
        self._settings = settings
        self._imaging = imaging
        self._metrics = metrics
        self._clock = clock
        self.backlog = Backlog()
        self._queue: asyncio.Queue[FrameRecord] = asyncio.Queue()
        self._ready: asyncio.Queue[_Ready] = asyncio.Queue()
        self._waiters = _Waiters()
        self._tasks: list[asyncio.Task[None]] = []
        self._accepting = False

    async def start(self) -> int:
        """Resume the frames a previous run left queued; start the workers."""
        await asyncio.to_thread(self._spool.prepare)
        queued = await self._resume()
        for number in range(self._settings.workers):
            self._spawn(self._work, f"frame-worker-{number}")
        self._spawn(self._commit_loop, "frame-committer")
        self._accepting = True
        logger.info("Frame pipeline started, %d frame(s) resumed", queued)
        return queued

    async def stop(self) -> None:
        """Stop taking frames; what is not committed stays queued for next start."""
        self._accepting = False
        for task in self._tasks:
            task.cancel()
        results = await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self._waiters.fail_all(ShuttingDown("the appliance stopped before deciding"))
        for result in results:
            if isinstance(result, Exception):
                logger.error("Frame pipeline task failed: %r", result)
        logger.info(
            "Frame pipeline stopped, %d frame(s) left queued", self.backlog.frames
        )

    def reserve(self, size: int) -> None:
        """Claim room for a frame of ``size`` bytes, or refuse it (503)."""
        if not self._accepting:
            raise ShuttingDown("the appliance is not taking frames now")
        full = self.backlog.frames + 1 > self._settings.max_frames or (
            self.backlog.bytes + size > self._settings.max_bytes
        )
        if full:
            self._metrics.frames_refused.labels("spool_full").inc()
            raise SpoolFull(
                f"the spool holds {self.backlog.frames} frames "
                f"({self.backlog.bytes} bytes); try again shortly"
            )
        free = self._spool.free_bytes()
        if free - size < self._settings.min_free_disk_bytes:
            self._metrics.frames_refused.labels("insufficient_storage").inc()
            raise InsufficientStorage(
                f"only {free} bytes are free on the appliance's disk; frames are "
                "refused until space is made"
            )
        self._grow(1, size)

    def release(self, size: int) -> None:
        self._grow(-1, -size)

    def enqueue(self, record: FrameRecord) -> None:
        self._queue.put_nowait(record)

    def expect(self, frame_id: str) -> asyncio.Future[FrameDecisions]:
        """A future for the decisions of a frame not yet decided."""
        return self._waiters.expect(frame_id)

    def _spawn(self, loop: Callable[[], Coroutine[Any, Any, None]], name: str) -> None:
        self._tasks.append(asyncio.create_task(loop(), name=name))

    def _grow(self, frames: int, size: int) -> None:
        self.backlog.frames += frames
        self.backlog.bytes += size
        self._metrics.spool_frames.set(self.backlog.frames)
        self._metrics.spool_bytes.set(self.backlog.bytes)

    async def _resume(self) -> int:
        queued = await self._frames.queued()
        known = {record.id for record in queued}
        stored = await asyncio.to_thread(self._spool.stored_ids)
        # Files of frames decided just before a crash, or never committed.
        await asyncio.to_thread(self._spool.remove, stored - known)
        for record in queued:
            self._grow(1, record.size_bytes)
            self.enqueue(record)
        return len(queued)

    async def _work(self) -> None:
        while True:
            record = await self._queue.get()
            try:
                with tracing.continued(record.traceparent):
                    findings = await self._examine(record)
            except Exception:
                # The frame stays queued in the database; try it again later.
                logger.exception("Frame %s failed; it will be retried", record.id)
                await asyncio.sleep(_FAULT_PAUSE_S)
                self.enqueue(record)
                continue
            await self._ready.put(_Ready(record, findings))

    async def _examine(self, record: FrameRecord) -> FrameFindings:
        frame = self._frame(record)
        camera = await self._cameras.get(record.camera_id)
        try:
            content = await asyncio.to_thread(self._spool.read, record.id)
        except FileNotFoundError:
            return _rejected(frame, camera, "the frame's spool file is missing")
        try:
            with self._metrics.stage_latency.labels("decode").time():
                prepared = await self._decoder.prepare(content, self._imaging)
        except PoorQuality as exc:
            self._metrics.frames_refused.labels(exc.reason).inc()
            return _rejected(frame, camera, exc.reason)
        except InvalidInput as exc:
            self._metrics.frames_refused.labels(exc.slug).inc()
            return _rejected(frame, camera, exc.detail)
        try:
            with self._metrics.stage_latency.labels("recognize").time():
                faces = await self._recognize(record.id, prepared.content)
        except RecognizerCallFailed as exc:
            self._metrics.recognizer_calls.labels("refused").inc()
            self._metrics.frames_refused.labels("recognizer_refused").inc()
            reason = f"the recognizer refused the frame: {exc.detail}"
            return _rejected(frame, camera, reason)
        return FrameFindings(frame, camera, faces)

    def _frame(self, record: FrameRecord) -> Frame:
        # A capture time far off the appliance clock is kept on the record but
        # not trusted for the mark: the receive time stands in for it.
        trusted = record.clock_skew_s is None
        return Frame(
            id=record.id,
            camera_id=record.camera_id,
            captured_at=record.captured_at if trusted else record.received_at,
            received_at=record.received_at,
            sha256=record.sha256,
            width=record.width,
            height=record.height,
            content=b"",
        )

    async def _recognize(self, frame_id: str, content: bytes) -> list[RecognizedFace]:
        """Faces in the frame; waits out outages, however long they last.

        A refusal of this very frame (a 4xx other than a bad key) is raised:
        asking again would not change the answer.
        """
        delay = _FIRST_RETRY_WAIT_S
        while True:
            try:
                faces = await self._recognizer.recognize(content)
                self._metrics.recognizer_calls.labels("ok").inc()
                return faces
            except Unavailable as exc:
                if _refuses_this_frame(exc):
                    raise
                # An open circuit says when to come back; a failed call backs off.
                failed_call = isinstance(exc, RecognizerCallFailed)
                outcome = "failed" if failed_call else "circuit_open"
                self._metrics.recognizer_calls.labels(outcome).inc()
                wait = delay if failed_call else float(exc.retry_after_s)
                logger.warning(
                    "Frame %s waits %.1f s for the recognizer: %s", frame_id, wait, exc
                )
                await asyncio.sleep(min(wait, _MAX_RETRY_WAIT_S))
                delay = min(delay * 2, _MAX_RETRY_WAIT_S)

    async def _commit_loop(self) -> None:
        while True:
            batch = await self._next_batch()
            await self._commit_until_done(batch)

    async def _next_batch(self) -> list[_Ready]:
        """The first ready frame, and whatever else is ready now, up to a batch."""
        batch = [await self._ready.get()]
        while len(batch) < self._settings.decision_batch and not self._ready.empty():
            batch.append(self._ready.get_nowait())
        return batch

    async def _commit_until_done(self, batch: list[_Ready]) -> None:
        while True:
            try:
                await self._commit(batch)
                return
            except Exception:
                # Nothing of the batch is committed; it can be tried again.
                logger.exception("Committing %d frame(s) failed", len(batch))
                await asyncio.sleep(_FAULT_PAUSE_S)

    async def _commit(self, batch: list[_Ready]) -> None:
        decided = await self._attendance.decide_batch([item.findings for item in batch])
        ids = [item.record.id for item in batch]
        await asyncio.to_thread(self._spool.remove, ids)

        for item in batch:
            self.release(item.record.size_bytes)
            result = decided.get(item.record.id)
            if result is None:
                continue
            for decision in result.decisions:
                self._metrics.frames_decided.labels(decision.outcome.value).inc()
                if decision.mark is not None:
                    self._metrics.marks.labels(decision.mark.kind.value).inc()
            self._waiters.resolve(item.record.id, result)


def _rejected(frame: Frame, camera: Camera, reason: str) -> FrameFindings:
    """A frame refused before recognition; the reason also gives its code."""
    return FrameFindings(frame, camera, refusal=(Outcome.REJECTED, reason))


def _refuses_this_frame(exc: Unavailable) -> bool:
    """A refusal of the frame itself (a 4xx other than a bad key), which asking
    again would not change; outages and a rejected key are waited out."""
    return (
        isinstance(exc, RecognizerCallFailed)
        and not exc.transient
        and not isinstance(exc, RecognizerKeyRejected)
    )
