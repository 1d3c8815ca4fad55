"""Controllers: the OpenAPI document of this API (``GET /openapi.json``)."""

from __future__ import annotations

from aiohttp import web

from edge_agent.gateway.openapi import build_openapi
from edge_agent.gateway.routing import endpoint

routes = web.RouteTableDef()


@routes.get("/openapi.json")
@endpoint("This API, described as OpenAPI 3.1", permission=None)
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(build_openapi(request.app))
