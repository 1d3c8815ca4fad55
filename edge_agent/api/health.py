"""Controllers: liveness for installers' checks and load balancers."""

from __future__ import annotations

from aiohttp import web

from edge_agent import __version__
from edge_agent.api.keys import services
from edge_agent.gateway.routing import endpoint

routes = web.RouteTableDef()


@routes.get("/healthz")
@endpoint("Liveness of the process", permission=None)
async def healthz(request: web.Request) -> web.Response:
    """The process serves requests. Dependencies are not probed here."""
    return web.json_response({"status": "ok", "version": __version__})


@routes.get("/readyz")
@endpoint("Readiness: the database answers, the recognizer is usable", permission=None)
async def readyz(request: web.Request) -> web.Response:
    """503 with the reasons while frames cannot be decided now."""
    report = await services(request).health.readiness()
    status = 200 if report.ready else 503
    return web.json_response(report.as_json(), status=status)
