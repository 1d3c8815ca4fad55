"""Controllers: the camera registry (``/v1/cameras``)."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from edge_agent.api import rendering
from edge_agent.api.keys import services
from edge_agent.gateway.validation import parse_json
from edge_agent.models import Direction

routes = web.RouteTableDef()


class NewCamera(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=64)
    name: str | None = Field(default=None, max_length=200)
    direction: Direction = Direction.BOTH


@routes.post("/v1/cameras")
async def register_camera(request: web.Request) -> web.Response:
    body = await parse_json(request, NewCamera)
    camera = await services(request).cameras.register(
        body.id, body.name, body.direction
    )
    return rendering.json_response(rendering.camera(camera), status=201)


@routes.get("/v1/cameras")
async def list_cameras(request: web.Request) -> web.Response:
    cameras = await services(request).cameras.list_cameras()
    return rendering.json_response({"cameras": [rendering.camera(c) for c in cameras]})
