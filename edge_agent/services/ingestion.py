"""Frame ingestion service: a camera's bytes become decisions.

Today a frame is processed while its camera waits: decode (off the loop),
recognize, decide, commit. Nothing is acknowledged before its decisions are
committed, so nothing acknowledged can be lost; the cost is that a camera
waits for the recognizer, and a recognizer outage refuses frames with 503
instead of queueing them. A durable spool with 202 answers removes both.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from edge_agent.clients.recognition.base import Recognizer
from edge_agent.clock import Clock
from edge_agent.errors import Forbidden, InvalidInput
from edge_agent.imaging.pool import DecodePool
from edge_agent.models import Decision, Frame, Person, Principal
from edge_agent.services.attendance import AttendanceService
from edge_agent.services.cameras import CameraService

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FrameUpload:
    """What a camera sent: who sent it, the camera it names, the image bytes
    and an optional capture time."""

    sender: Principal
    camera_id: str | None
    content: bytes
    captured_at: datetime | None = None

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
class FrameOutcome:
    frame: Frame
    decisions: list[Decision]
    people: dict[str, Person]


class IngestionService:
    def __init__(
        self,
        cameras: CameraService,
        decoder: DecodePool,
        recognizer: Recognizer,
        attendance: AttendanceService,
        clock: Clock,
    ) -> None:
        self._cameras = cameras
        self._decoder = decoder
        self._recognizer = recognizer
        self._attendance = attendance
        self._clock = clock

    async def process(self, upload: FrameUpload) -> FrameOutcome:
        """Validate, recognize and decide one frame; raise a domain error if refused."""
        camera = await self._cameras.get(upload.resolve_camera())
        received_at = self._clock.now()
        image = await self._decoder.decode(upload.content)

        frame = Frame(
            id=uuid.uuid4().hex,
            camera_id=camera.id,
            captured_at=upload.captured_at or received_at,
            received_at=received_at,
            sha256=hashlib.sha256(upload.content).hexdigest(),
            width=image.width,
            height=image.height,
            content=upload.content,
        )
        logger.debug("Frame %s from camera %s decoded", frame.id, camera.id)

        faces = await self._recognizer.recognize(frame.content)
        decided = await self._attendance.decide(frame, camera, faces)
        return FrameOutcome(frame, decided.decisions, decided.people)
