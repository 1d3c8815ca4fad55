"""Controllers: liveness for installers' checks and load balancers."""

from __future__ import annotations

from aiohttp import web

from edge_agent import __version__

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """The process serves requests. Dependencies are not probed here."""
    return web.json_response({"status": "ok", "version": __version__})
