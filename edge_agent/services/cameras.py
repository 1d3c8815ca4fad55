"""Camera service: the fleet of cameras allowed to send frames, and their keys.

A camera's API key is shown once, when it is made; only its hash is kept.
Rotating a key leaves the old one valid for a grace period, so a camera can
be reconfigured without a gap; revoking ends every key of the camera at once.

A camera is registered, changed, disabled, enabled and removed; every change
is audited. Removal keeps the row, since decisions and marks name the camera:
the camera is hidden from listings, its keys are revoked and its frames are
refused, and registering the same id again brings it back.
"""

from __future__ import annotations

import enum
import logging
import math
import re
import time as monotonic_time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from datetime import datetime, time, timedelta
from typing import Any, Final
from urllib.parse import urlsplit

from edge_agent.clients.storage.cameras import (
    CameraRepository,
    CameraStatus,
    window_to_json,
)
from edge_agent.clients.storage.security import CameraKeyRepository
from edge_agent.clock import Clock
from edge_agent.errors import Conflict, InvalidInput, NotFound
from edge_agent.imaging.video import display_url
from edge_agent.models import ActiveWindow, Camera, Direction, Principal
from edge_agent.security.api_keys import hash_api_key, new_api_key
from edge_agent.services.audit import AuditAction, AuditService

__all__ = [
    "KEEP",
    "CameraDisabled",
    "CameraPatch",
    "CameraRemoved",
    "CameraService",
    "CameraStatus",
    "RegisteredCamera",
    "ensure_accepting",
    "parse_schedule",
]

logger = logging.getLogger(__name__)

_CAMERA_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_HH_MM = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
_PROBE_SCHEMES = ("http", "https", "rtsp")
_MAX_TEXT = 200
_MAX_URL = 2048
_MAX_INTERVAL_S = 86_400.0
_MAX_WINDOWS = 32
# A camera found once is kept this long, so that each frame does not cost a
# query. Changes made here drop the entry at once; changes made by another
# process (the CLI beside the daemon) take effect within this time.
_CACHE_TTL_S = 5.0


class CameraDisabled(Conflict):
    """The camera exists but is disabled: its frames are refused."""

    slug = "camera-disabled"
    title = "Camera disabled"


class CameraRemoved(Conflict):
    """The camera was removed: its frames are refused until it is registered."""

    slug = "camera-removed"
    title = "Camera removed"


class _Keep(enum.Enum):
    KEEP = "keep"


# A field of a patch left as it is.
KEEP: Final = _Keep.KEEP


@dataclass(frozen=True, slots=True)
class CameraPatch:
    """Changes to a camera's managed fields: ``KEEP`` leaves one as it is and
    ``None`` clears an optional one (an empty schedule means always active)."""

    name: str | _Keep = KEEP
    direction: Direction | _Keep = KEEP
    location: str | _Keep | None = KEEP
    expected_interval_s: float | _Keep | None = KEEP
    match_threshold: float | _Keep | None = KEEP
    probe_url: str | _Keep | None = KEEP
    schedule: tuple[ActiveWindow, ...] | _Keep = KEEP

    def changes(self) -> dict[str, Any]:
        """The fields that change, by name."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return {name: value for name, value in values.items() if value is not KEEP}


@dataclass(frozen=True, slots=True)
class RegisteredCamera:
    camera: Camera
    api_key: str


def ensure_accepting(camera: Camera) -> None:
    """Raise unless frames from ``camera`` may be accepted now."""
    if camera.removed:
        raise CameraRemoved(
            f"camera {camera.id!r} was removed; register it again to use it",
            camera_id=camera.id,
        )
    if not camera.enabled:
        raise CameraDisabled(
            f"camera {camera.id!r} is disabled; enable it to send frames",
            camera_id=camera.id,
        )


def parse_schedule(items: Iterable[Mapping[str, Any]]) -> tuple[ActiveWindow, ...]:
    """Windows from ``{"days": [0..6], "start": "HH:MM", "end": "HH:MM"}`` items."""
    windows = tuple(_window(item) for item in items)
    if len(windows) > _MAX_WINDOWS:
        raise InvalidInput(f"a schedule has at most {_MAX_WINDOWS} windows")
    return windows


def _window(item: Mapping[str, Any]) -> ActiveWindow:
    days, start, end = item.get("days"), item.get("start"), item.get("end")
    if not isinstance(days, list | tuple) or not days:
        raise InvalidInput("a schedule window needs days: a list of 0 (Mon) to 6")
    if not all(isinstance(d, int) and 0 <= d <= 6 for d in days):
        raise InvalidInput("schedule days are 0 (Monday) to 6 (Sunday)")
    return ActiveWindow(tuple(sorted(set(days))), _clock_time(start), _clock_time(end))


def _clock_time(value: object) -> time:
    if not isinstance(value, str) or not _HH_MM.match(value):
        raise InvalidInput("schedule start and end are HH:MM, 00:00 to 23:59")
    return time.fromisoformat(value)


class CameraService:
    """The camera registry and its keys; every change is audited."""

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
        self._known: dict[str, tuple[float, Camera]] = {}

    async def register(
        self,
        camera_id: str,
        name: str | None,
        direction: Direction,
        actor: Principal,
        patch: CameraPatch | None = None,
    ) -> RegisteredCamera:
        """Add a camera with its first API key, or bring a removed one back."""
        if not _CAMERA_ID.match(camera_id):
            raise InvalidInput(
                "a camera id is 1-64 letters, digits, '.', '_' or '-'",
                camera_id=camera_id,
            )
        base = CameraPatch(name=name or camera_id, direction=direction)
        changes = {**_checked(patch or CameraPatch()), **_checked(base)}
        existing = await self._cameras.find(camera_id)
        if existing is not None and not existing.removed:
            raise Conflict(f"camera {camera_id!r} already exists")

        async with self._audit.atomic():
            if existing is None:
                fresh = Camera(camera_id, camera_id, direction, self._now())
                camera = replace(fresh, **changes)
                await self._cameras.add(camera)
                action = AuditAction.CAMERA_REGISTERED
            else:
                camera = await self._revive(existing, changes)
                action = AuditAction.CAMERA_RESTORED
            details = {"direction": direction.value}
            await self._changed(actor, action, camera, details)
        return RegisteredCamera(camera, await self.create_key(camera_id, actor))

    async def update(
        self, camera_id: str, patch: CameraPatch, actor: Principal
    ) -> Camera:
        """Apply ``patch`` to a camera that is not removed."""
        current = await self.describe(camera_id)
        changes = _checked(patch)
        if not changes:
            return current
        camera = replace(current, **changes, updated_at=self._now())
        async with self._audit.atomic():
            await self._store(camera)
            await self._changed(
                actor, AuditAction.CAMERA_UPDATED, camera, _audit_details(changes)
            )
        return camera

    async def enable(self, camera_id: str, actor: Principal) -> Camera:
        """Accept the camera's frames again."""
        return await self._set_enabled(camera_id, True, actor)

    async def disable(self, camera_id: str, actor: Principal) -> Camera:
        """Refuse the camera's frames until it is enabled again."""
        return await self._set_enabled(camera_id, False, actor)

    async def remove(self, camera_id: str, actor: Principal) -> Camera:
        """Hide the camera, revoke its keys and refuse its frames; keep its row."""
        current = await self.describe(camera_id)
        now = self._now()
        camera = replace(current, removed_at=now, updated_at=now)
        async with self._audit.atomic():
            await self._store(camera)
            revoked = await self._keys.revoke_all(camera_id, now)
            await self._changed(
                actor, AuditAction.CAMERA_REMOVED, camera, {"keys_revoked": revoked}
            )
        return camera

    async def get(self, camera_id: str) -> Camera:
        """The camera, removed or not (decisions still name removed cameras)."""
        cached = self._known.get(camera_id)
        if cached is not None and monotonic_time.monotonic() < cached[0]:
            return cached[1]
        camera = await self._cameras.find(camera_id)
        if camera is None:
            raise NotFound(f"no camera with id {camera_id!r}", camera_id=camera_id)
        self._known[camera_id] = (monotonic_time.monotonic() + _CACHE_TTL_S, camera)
        return camera

    async def describe(self, camera_id: str) -> Camera:
        """The camera as its admin sees it: a removed camera is not found."""
        camera = await self._cameras.find(camera_id)
        if camera is None or camera.removed:
            raise NotFound(f"no camera with id {camera_id!r}", camera_id=camera_id)
        return camera

    async def list_cameras(self) -> list[Camera]:
        """Every camera not removed."""
        return await self._cameras.all()

    async def statuses(self) -> list[CameraStatus]:
        """Every camera not removed, with what the health monitor last stored."""
        return await self._cameras.statuses()

    async def create_key(self, camera_id: str, actor: Principal) -> str:
        await self.describe(camera_id)
        key = new_api_key()
        async with self._audit.atomic():
            await self._keys.add(camera_id, hash_api_key(key), self._now())
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
        await self.describe(camera_id)
        key = new_api_key()
        now = self._now()
        async with self._audit.atomic():
            await self._keys.rotate(camera_id, hash_api_key(key), now, now + grace)
            await self._audit.record(
                actor,
                AuditAction.CAMERA_KEY_ROTATED,
                target=f"camera:{camera_id}",
                details={"grace_s": int(grace.total_seconds())},
            )
        return key

    async def revoke_keys(self, camera_id: str, actor: Principal) -> int:
        async with self._audit.atomic():
            revoked = await self._keys.revoke_all(camera_id, self._now())
            if revoked == 0:
                raise NotFound(f"camera {camera_id!r} has no active key")
            await self._audit.record(
                actor,
                AuditAction.CAMERA_KEY_REVOKED,
                target=f"camera:{camera_id}",
                details={"keys": revoked},
            )
        return revoked

    async def _set_enabled(
        self, camera_id: str, enabled: bool, actor: Principal
    ) -> Camera:
        current = await self.describe(camera_id)
        if current.enabled == enabled:
            return current
        camera = replace(current, enabled=enabled, updated_at=self._now())
        action = AuditAction.CAMERA_ENABLED if enabled else AuditAction.CAMERA_DISABLED
        async with self._audit.atomic():
            await self._store(camera)
            await self._changed(actor, action, camera, {})
        return camera

    async def _revive(self, removed: Camera, changes: dict[str, Any]) -> Camera:
        now = self._now()
        # A camera brought back starts from what it is registered with now,
        # not from the settings it had before it was removed.
        fresh = Camera(removed.id, removed.id, removed.direction, removed.created_at)
        camera = replace(fresh, **changes, updated_at=now)
        await self._store(camera)
        return camera

    async def _store(self, camera: Camera) -> None:
        self._known.pop(camera.id, None)
        if not await self._cameras.save(camera):
            raise NotFound(f"no camera with id {camera.id!r}", camera_id=camera.id)

    async def _changed(
        self, actor: Principal, action: str, camera: Camera, details: dict[str, Any]
    ) -> None:
        self._known.pop(camera.id, None)
        await self._audit.record(
            actor, action, target=f"camera:{camera.id}", details=details
        )
        logger.info("Camera %s: %s", camera.id, action)

    def _now(self) -> datetime:
        return self._clock.now()


def _checked(patch: CameraPatch) -> dict[str, Any]:
    """The patch's changes, each checked; raise :class:`InvalidInput` if bad."""
    changes = patch.changes()
    for name, value in changes.items():
        _CHECKS.get(name, _accept)(value)
    return changes


def _accept(value: object) -> None:
    return None


def _check_name(value: object) -> None:
    if not isinstance(value, str) or not value.strip() or len(value) > _MAX_TEXT:
        raise InvalidInput(f"a camera name is 1-{_MAX_TEXT} characters")


def _check_direction(value: object) -> None:
    if not isinstance(value, Direction):
        raise InvalidInput("a camera's direction is entry, exit or both")


def _check_location(value: object) -> None:
    if value is not None and (not isinstance(value, str) or len(value) > _MAX_TEXT):
        raise InvalidInput(f"a camera location is at most {_MAX_TEXT} characters")


def _check_interval(value: object) -> None:
    if value is None:
        return
    if not isinstance(value, int | float) or not 0 <= value <= _MAX_INTERVAL_S:
        raise InvalidInput(
            f"expected_interval_s is 0 (not watched) to {_MAX_INTERVAL_S:.0f} seconds"
        )


def _check_threshold(value: object) -> None:
    if value is None:
        return
    if not isinstance(value, int | float) or math.isnan(value) or not 0 <= value <= 1:
        raise InvalidInput("a match threshold is between 0 and 1")


def _check_probe_url(value: object) -> None:
    if value is None:
        return
    if not isinstance(value, str) or len(value) > _MAX_URL:
        raise InvalidInput(f"a probe URL is at most {_MAX_URL} characters")
    if any(c.isspace() or ord(c) < 32 for c in value):
        raise InvalidInput("a probe URL has no spaces or control characters")
    try:
        parts = urlsplit(value)
        _ = parts.port  # reading the port is what refuses a malformed one
    except ValueError as exc:
        raise InvalidInput(f"the probe URL does not parse: {exc}") from exc
    if parts.scheme not in _PROBE_SCHEMES or not parts.hostname:
        raise InvalidInput("a probe URL is http://, https:// or rtsp:// with a host")


_CHECKS = {
    "name": _check_name,
    "direction": _check_direction,
    "location": _check_location,
    "expected_interval_s": _check_interval,
    "match_threshold": _check_threshold,
    "probe_url": _check_probe_url,
}


def _audit_details(changes: dict[str, Any]) -> dict[str, Any]:
    """What changed, fit for the audit log: a probe URL's secrets are masked."""
    details: dict[str, Any] = {}
    for name, value in changes.items():
        if name == "probe_url":
            details[name] = None if value is None else display_url(value)
        elif name == "schedule":
            details[name] = [window_to_json(w) for w in value]
        elif isinstance(value, enum.Enum):
            details[name] = value.value
        else:
            details[name] = value
    return details
