"""Camera service: the registry of cameras allowed to send frames."""

from __future__ import annotations

import logging
import re

from edge_agent.clients.storage.repositories import CameraRepository
from edge_agent.clock import Clock
from edge_agent.errors import InvalidInput, NotFound
from edge_agent.models import Camera, Direction

logger = logging.getLogger(__name__)

_CAMERA_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class CameraService:
    def __init__(self, cameras: CameraRepository, clock: Clock) -> None:
        self._cameras = cameras
        self._clock = clock

    async def register(
        self,
        camera_id: str,
        name: str | None = None,
        direction: Direction = Direction.BOTH,
    ) -> Camera:
        """Add a camera; its id is what it sends with every frame."""
        if not _CAMERA_ID.match(camera_id):
            raise InvalidInput(
                "a camera id is 1-64 letters, digits, '.', '_' or '-'",
                camera_id=camera_id,
            )
        camera = Camera(camera_id, name or camera_id, direction, self._clock.now())
        await self._cameras.add(camera)
        logger.info("Registered camera %s (%s)", camera.id, camera.direction)
        return camera

    async def get(self, camera_id: str) -> Camera:
        camera = await self._cameras.find(camera_id)
        if camera is None:
            raise NotFound(f"no camera with id {camera_id!r}", camera_id=camera_id)
        return camera

    async def list_cameras(self) -> list[Camera]:
        return await self._cameras.all()
