"""Controllers: the camera registry and camera API keys (``/v1/cameras``)."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from edge_agent.api import rendering
from edge_agent.api.keys import services
from edge_agent.gateway.context import PRINCIPAL
from edge_agent.gateway.rbac import Permission
from edge_agent.gateway.routing import endpoint
from edge_agent.gateway.validation import parse_json
from edge_agent.models import Direction

routes = web.RouteTableDef()


class NewCamera(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=64)
    name: str | None = Field(default=None, max_length=200)
    direction: Direction = Direction.BOTH


class KeyRotation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grace_s: int | None = Field(
        default=None, ge=0, le=30 * 86400, description="old key stays valid this long"
    )


@routes.post("/v1/cameras")
@endpoint(
    "Register a camera; the answer holds its API key, shown only once",
    permission=Permission.CAMERAS_WRITE,
    body=NewCamera,
    responses=(201,),
)
async def register_camera(request: web.Request) -> web.Response:
    body = await parse_json(request, NewCamera)
    registered = await services(request).cameras.register(
        body.id, body.name, body.direction, request[PRINCIPAL]
    )
    answer = {**rendering.camera(registered.camera), "api_key": registered.api_key}
    return rendering.json_response(answer, status=201)


@routes.get("/v1/cameras")
@endpoint("List cameras", permission=Permission.CAMERAS_READ)
async def list_cameras(request: web.Request) -> web.Response:
    cameras = await services(request).cameras.list_cameras()
    return rendering.json_response({"cameras": [rendering.camera(c) for c in cameras]})


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
