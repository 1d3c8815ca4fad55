"""Camera service: the registry of cameras allowed to send frames, and their keys.

A camera's API key is shown once, when it is made; only its hash is kept.
Rotating a key leaves the old one valid for a grace period, so a camera can
be reconfigured without a gap; revoking ends every key of the camera at once.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import timedelta

from edge_agent.clients.storage.cameras import CameraRepository
from edge_agent.clients.storage.security import CameraKeyRepository
from edge_agent.clock import Clock
from edge_agent.errors import InvalidInput, NotFound
from edge_agent.models import Camera, Direction, Principal
from edge_agent.security.api_keys import hash_api_key, new_api_key
from edge_agent.services.audit import AuditAction, AuditService

logger = logging.getLogger(__name__)

_CAMERA_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True, slots=True)
class RegisteredCamera:
    camera: Camera
    api_key: str


class CameraService:
    def __init__(
        self,
        cameras: CameraRepository,
        keys: CameraKeyRepository,
        audit: AuditService,
        clock: Clock,
        rotation_grace_s: int,
    ) -> None:
        self._cameras = cameras
        self._keys = keys
        self._audit = audit
        self._clock = clock
        self._rotation_grace_s = rotation_grace_s
        # Every frame names its camera; cameras are never changed or removed
        # once registered, so a camera found once is kept.
        self._known: dict[str, Camera] = {}

    async def register(
        self,
        camera_id: str,
        name: str | None,
        direction: Direction,
        actor: Principal,
    ) -> RegisteredCamera:
        """Add a camera with its first API key."""
        if not _CAMERA_ID.match(camera_id):
            raise InvalidInput(
                "a camera id is 1-64 letters, digits, '.', '_' or '-'",
                camera_id=camera_id,
            )
        camera = Camera(camera_id, name or camera_id, direction, self._clock.now())
        await self._cameras.add(camera)
        await self._audit.record(
            actor,
            AuditAction.CAMERA_REGISTERED,
            target=f"camera:{camera_id}",
            details={"direction": direction.value},
        )
        logger.info("Registered camera %s (%s)", camera.id, camera.direction)
        return RegisteredCamera(camera, await self.create_key(camera_id, actor))

    async def get(self, camera_id: str) -> Camera:
        camera = self._known.get(camera_id) or await self._cameras.find(camera_id)
        if camera is None:
            raise NotFound(f"no camera with id {camera_id!r}", camera_id=camera_id)
        self._known[camera_id] = camera
        return camera

    async def list_cameras(self) -> list[Camera]:
        return await self._cameras.all()

    async def create_key(self, camera_id: str, actor: Principal) -> str:
        await self.get(camera_id)
        key = new_api_key()
        await self._keys.add(camera_id, hash_api_key(key), self._clock.now())
        await self._audit.record(
            actor, AuditAction.CAMERA_KEY_CREATED, target=f"camera:{camera_id}"
        )
        return key

    async def rotate_key(
        self, camera_id: str, grace_s: int | None, actor: Principal
    ) -> str:
        """A new key; the old ones keep working for the grace period."""
        grace = timedelta(
            seconds=self._rotation_grace_s if grace_s is None else grace_s
        )
        await self.get(camera_id)
        key = new_api_key()
        now = self._clock.now()
        await self._keys.rotate(camera_id, hash_api_key(key), now, now + grace)
        await self._audit.record(
            actor,
            AuditAction.CAMERA_KEY_ROTATED,
            target=f"camera:{camera_id}",
            details={"grace_s": int(grace.total_seconds())},
        )
        return key

    async def revoke_keys(self, camera_id: str, actor: Principal) -> int:
        revoked = await self._keys.revoke_all(camera_id, self._clock.now())
        if revoked == 0:
            raise NotFound(f"camera {camera_id!r} has no active key")
        await self._audit.record(
            actor,
            AuditAction.CAMERA_KEY_REVOKED,
            target=f"camera:{camera_id}",
            details={"keys": revoked},
        )
        return revoked
