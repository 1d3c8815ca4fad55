"""Controllers: liveness for installers' checks and load balancers."""

from __future__ import annotations

from aiohttp import web

from edge_agent import __version__
from edge_agent.gateway.routing import endpoint

routes = web.RouteTableDef()


@routes.get("/healthz")
@endpoint("Liveness of the process", permission=None)
async def healthz(request: web.Request) -> web.Response:
    """The process serves requests. Dependencies are not probed here."""
    return web.json_response({"status": "ok", "version": __version__})
