"""Controllers: the camera fleet, its health and its API keys (``/v1/cameras``)."""

from __future__ import annotations

from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from edge_agent.api import rendering
from edge_agent.api.acts import answer_act
from edge_agent.api.keys import services
from edge_agent.errors import InvalidInput
from edge_agent.gateway.context import PRINCIPAL
from edge_agent.gateway.rbac import Permission
from edge_agent.gateway.routing import endpoint
from edge_agent.gateway.validation import parse_json
from edge_agent.models import Direction
from edge_agent.services.cameras import CameraPatch, parse_schedule

routes = web.RouteTableDef()

_HH_MM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
Weekday = Annotated[int, Field(ge=0, le=6)]


class ActiveWindowBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    days: list[Weekday] = Field(
        min_length=1, max_length=7, description="weekdays it starts on, 0 is Monday"
    )
    start: str = Field(pattern=_HH_MM, description="HH:MM, site time zone")
    end: str = Field(
        pattern=_HH_MM, description="HH:MM; not after start: crosses midnight"
    )


class CameraFields(BaseModel):
    """The managed fields; in a change, a field left out stays as it is and
    ``null`` clears it."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    direction: Direction | None = None
    location: str | None = Field(default=None, max_length=200)
    expected_interval_s: float | None = Field(
        default=None, ge=0, le=86_400, description="0: not watched"
    )
    match_threshold: float | None = Field(default=None, ge=0, le=1)
    probe_url: str | None = Field(
        default=None, max_length=2048, description="http(s) snapshot or rtsp://"
    )
    schedule: list[ActiveWindowBody] | None = Field(
        default=None, max_length=32, description="empty or null: always active"
    )


class NewCamera(CameraFields):
    id: str = Field(min_length=1, max_length=64)


class KeyRotation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grace_s: int | None = Field(
        default=None, ge=0, le=30 * 86400, description="old key stays valid this long"
    )


def _camera_patch(
    body: CameraFields, *, skip: frozenset[str] = frozenset()
) -> CameraPatch:
    """The patch the fields sent in ``body`` describe."""
    values: dict[str, Any] = {}
    for name in body.model_fields_set - skip - {"id"}:
        value = getattr(body, name)
        if name in ("name", "direction") and value is None:
            raise InvalidInput(f"{name} cannot be cleared")
        if name == "schedule":
            value = parse_schedule(w.model_dump() for w in value or [])
        values[name] = value
    return CameraPatch(**values)


@routes.post("/v1/cameras")
@endpoint(
    "Register a camera (or bring a removed one back); the answer holds its API "
    "key, shown only once",
    permission=Permission.CAMERAS_WRITE,
    body=NewCamera,
    responses=(201,),
)
async def register_camera(request: web.Request) -> web.Response:
    body = await parse_json(request, NewCamera)
    patch = _camera_patch(body, skip=frozenset({"name", "direction"}))
    registered = await services(request).cameras.register(
        body.id,
        body.name,
        body.direction or Direction.BOTH,
        request[PRINCIPAL],
        patch,
    )
    answer = {**rendering.camera(registered.camera), "api_key": registered.api_key}
    return rendering.json_response(answer, status=201)


@routes.get("/v1/cameras")
@endpoint("List cameras", permission=Permission.CAMERAS_READ)
async def list_cameras(request: web.Request) -> web.Response:
    cameras = await services(request).cameras.list_cameras()
    return rendering.json_response({"cameras": [rendering.camera(c) for c in cameras]})


# Declared before /v1/cameras/{id}, which would otherwise take "status" as an id.
@routes.get("/v1/cameras/status")
@endpoint("Every camera's health state", permission=Permission.CAMERAS_READ)
async def camera_statuses(request: web.Request) -> web.Response:
    statuses = await services(request).cameras.statuses()
    views = [rendering.camera_status(s) for s in statuses]
    return rendering.json_response({"cameras": views})


@routes.get("/v1/cameras/{id}")
@endpoint("One camera", permission=Permission.CAMERAS_READ)
async def get_camera(request: web.Request) -> web.Response:
    camera = await services(request).cameras.describe(request.match_info["id"])
    return rendering.json_response(rendering.camera(camera))


@routes.patch("/v1/cameras/{id}")
@endpoint(
    "Change a camera; fields left out stay, null clears one",
    permission=Permission.CAMERAS_WRITE,
    body=CameraFields,
)
async def update_camera(request: web.Request) -> web.Response:
    patch = _camera_patch(await parse_json(request, CameraFields))
    camera = await services(request).cameras.update(
        request.match_info["id"], patch, request[PRINCIPAL]
    )
    return rendering.json_response(rendering.camera(camera))


@routes.delete("/v1/cameras/{id}")
@endpoint(
    "Remove a camera: hidden, keys revoked, frames refused; its history stays",
    permission=Permission.CAMERAS_WRITE,
)
async def remove_camera(request: web.Request) -> web.Response:
    return await answer_act(request, services(request).cameras.remove, rendering.camera)


@routes.post("/v1/cameras/{id}/enable")
@endpoint("Accept a camera's frames again", permission=Permission.CAMERAS_WRITE)
async def enable_camera(request: web.Request) -> web.Response:
    return await answer_act(request, services(request).cameras.enable, rendering.camera)


@routes.post("/v1/cameras/{id}/disable")
@endpoint("Refuse a camera's frames", permission=Permission.CAMERAS_WRITE)
async def disable_camera(request: web.Request) -> web.Response:
    return await answer_act(
        request, services(request).cameras.disable, rendering.camera
    )


@routes.post("/v1/cameras/{id}/keys")
@endpoint(
    "Rotate a camera's API key; the old one works for the grace period",
    permission=Permission.CAMERAS_WRITE,
    body=KeyRotation,
    responses=(201,),
)
async def rotate_key(request: web.Request) -> web.Response:
    body = await parse_json(request, KeyRotation)
    camera_id = request.match_info["id"]
    key = await services(request).cameras.rotate_key(
        camera_id, body.grace_s, request[PRINCIPAL]
    )
    return rendering.json_response({"camera_id": camera_id, "api_key": key}, 201)


@routes.delete("/v1/cameras/{id}/keys")
@endpoint("Revoke every API key of a camera", permission=Permission.CAMERAS_WRITE)
async def revoke_keys(request: web.Request) -> web.Response:
    camera_id = request.match_info["id"]
    revoked = await services(request).cameras.revoke_keys(camera_id, request[PRINCIPAL])
    return rendering.json_response({"camera_id": camera_id, "revoked": revoked})
