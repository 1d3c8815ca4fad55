"""Frame ingestion service: accept a camera's frame durably, or refuse it at once.

Acceptance checks the camera and the image header (no pixel is decoded
here), answers a repeat of the same bytes with the first frame's id, claims
room in the spool, writes the frame to the spool folder and commits its
queue row; only then is the frame acknowledged. The pipeline does the rest.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from edge_agent.clients.storage.frames import FrameRecord, FrameRepository
from edge_agent.clients.storage.spool import SpoolFolder
from edge_agent.clock import Clock
from edge_agent.config import ImagingSettings, SpoolSettings
from edge_agent.errors import EdgeError, Forbidden, InvalidInput, NotFound
from edge_agent.imaging.inspect import ImageHeader, inspect_image
from edge_agent.models import Camera, Decision, Person, Principal
from edge_agent.observability.metrics import Metrics
from edge_agent.services.attendance import AttendanceService
from edge_agent.services.camera_activity import CameraActivity
from edge_agent.services.cameras import CameraService, ensure_accepting
from edge_agent.services.pipeline import FramePipeline

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FrameUpload:
    """What a camera sent: who sent it, the camera it names, the image bytes,
    an optional capture time and an optional per-camera sequence number."""

    sender: Principal
    camera_id: str | None
    content: bytes
    captured_at: datetime | None = None
    camera_seq: int | None = None

    def resolve_camera(self) -> str:
        """The camera the frame is from; a camera may only send as itself."""
        own = self.sender.camera_id
        if own is not None and self.camera_id not in (None, own):
            raise Forbidden(
                f"camera {own!r} may not send frames as camera {self.camera_id!r}"
            )
        camera_id = self.camera_id or own
        if camera_id is None:
            raise InvalidInput(
                "say which camera sent the frame: X-Camera-Id header or camera_id field"
            )
        return camera_id


@dataclass(frozen=True, slots=True)
class AcceptedFrame:
    record: FrameRecord
    # The id of an identical frame accepted moments before, when this is one.
    duplicate_of: str | None = None


@dataclass(frozen=True, slots=True)
class FrameOutcome:
    """A frame and, once decided, its decisions and the people they name."""

    record: FrameRecord
    decisions: list[Decision]
    people: dict[str, Person]
    duplicate_of: str | None = None


class IngestionService:
    def __init__(
        self,
        cameras: CameraService,
        frames: FrameRepository,
        spool: SpoolFolder,
        pipeline: FramePipeline,
        attendance: AttendanceService,
        settings: SpoolSettings,
        imaging: ImagingSettings,
        metrics: Metrics,
        clock: Clock,
        *,
        activity: CameraActivity | None = None,
    ) -> None:
        self._cameras = cameras
        self._frames = frames
        self._spool = spool
        self._pipeline = pipeline
        self._attendance = attendance
        self._settings = settings
        self._imaging = imaging
        self._metrics = metrics
        self._clock = clock
        self._activity = activity

    async def submit(self, upload: FrameUpload) -> AcceptedFrame:
        """Make the frame durable and queue it; raise a domain error if refused.

        A disabled or removed camera's frames are refused. Accepted and refused
        frames of a known camera are reported to the activity tracker.
        """
        camera = await self._cameras.get(upload.resolve_camera())
        try:
            accepted = await self._accept(camera, upload)
        except EdgeError as exc:
            if self._activity is not None:
                self._activity.frame_refused(camera.id, f"{exc.slug}: {exc.detail}")
            raise
        if self._activity is not None:
            # Now, not the record's time: a repeat of a recent frame answers
            # with the first one's record, yet shows the camera is talking.
            self._activity.frame_accepted(
                camera.id, self._clock.now(), camera.expected_interval_s
            )
        return accepted

    async def _accept(self, camera: Camera, upload: FrameUpload) -> AcceptedFrame:
        ensure_accepting(camera)
        with self._metrics.stage_latency.labels("inspect").time():
            header = self._inspect(upload.content)
        received_at = self._clock.now()
        sha256 = hashlib.sha256(upload.content).hexdigest()

        twin = await self._recent_twin(camera.id, sha256, received_at)
        if twin is not None:
            return twin

        record = self._record(upload, camera.id, header, sha256, received_at)
        # Once the frame is being stored, a dropped connection must not leave
        # it half-accepted: storing and queueing finish either way.
        await asyncio.shield(self._store(record, upload.content))
        logger.debug("Frame %s from camera %s queued", record.id, camera.id)
        return AcceptedFrame(record)

    async def process(
        self, upload: FrameUpload, timeout_s: float = 30.0
    ) -> FrameOutcome:
        """Submit the frame and wait for its decisions (a kiosk's request)."""
        accepted = await self.submit(upload)
        frame_id = accepted.duplicate_of or accepted.record.id
        waiting = self._pipeline.expect(frame_id)
        # The frame may have been decided before the wait was registered.
        current = await self.status(frame_id, upload.sender)
        if current.record.state == "decided":
            return _with_duplicate(current, accepted.duplicate_of)

        try:
            async with asyncio.timeout(timeout_s):
                await waiting
        except TimeoutError:
            # Still queued (the recognizer may be down): the caller can poll.
            return _with_duplicate(current, accepted.duplicate_of)
        final = await self.status(frame_id, upload.sender)
        return _with_duplicate(final, accepted.duplicate_of)

    async def status(self, frame_id: str, reader: Principal) -> FrameOutcome:
        """A frame's state and decisions; a camera sees only its own frames."""
        record = await self._frames.get(frame_id)
        own = reader.camera_id
        if record is None or (own is not None and record.camera_id != own):
            raise NotFound(f"no frame with id {frame_id!r}")
        decided = await self._attendance.decisions_of(frame_id)
        return FrameOutcome(record, decided.decisions, decided.people)

    def _inspect(self, content: bytes) -> ImageHeader:
        try:
            return inspect_image(
                content,
                max_pixels=self._imaging.max_pixels,
                max_side=self._imaging.max_side,
            )
        except InvalidInput as exc:
            self._metrics.frames_refused.labels(exc.slug).inc()
            raise

    async def _recent_twin(
        self, camera_id: str, sha256: str, now: datetime
    ) -> AcceptedFrame | None:
        window = timedelta(seconds=self._settings.duplicate_frame_window_s)
        if not window:
            return None
        twin = await self._frames.recent_twin(camera_id, sha256, now - window)
        if twin is None:
            return None
        self._metrics.frames_refused.labels("duplicate_frame").inc()
        return AcceptedFrame(twin, duplicate_of=twin.id)

    def _record(
        self,
        upload: FrameUpload,
        camera_id: str,
        header: ImageHeader,
        sha256: str,
        received_at: datetime,
    ) -> FrameRecord:
        captured_at = upload.captured_at or received_at
        skew = (captured_at - received_at).total_seconds()
        flagged = abs(skew) > self._settings.clock_skew_tolerance_s
        if flagged:
            logger.warning(
                "Camera %s clock is %.0f s off the appliance clock", camera_id, skew
            )
        return FrameRecord(
            id=uuid.uuid4().hex,
            camera_id=camera_id,
            sha256=sha256,
            size_bytes=len(upload.content),
            format=header.format.value,
            width=header.width,
            height=header.height,
            captured_at=captured_at,
            received_at=received_at,
            camera_seq=upload.camera_seq,
            clock_skew_s=round(skew, 3) if flagged else None,
        )

    async def _store(self, record: FrameRecord, content: bytes) -> None:
        self._pipeline.reserve(record.size_bytes)
        try:
            with self._metrics.stage_latency.labels("spool").time():
                await asyncio.to_thread(self._spool.write, record.id, content)
                await self._frames.add(record)
        except Exception:
            self._pipeline.release(record.size_bytes)
            await asyncio.to_thread(self._spool.remove, [record.id])
            raise
        self._pipeline.enqueue(record)


def _with_duplicate(outcome: FrameOutcome, duplicate_of: str | None) -> FrameOutcome:
    return FrameOutcome(outcome.record, outcome.decisions, outcome.people, duplicate_of)
