"""Controllers: Prometheus metrics (``GET /metrics``), open or admin-only."""

from __future__ import annotations

from aiohttp import web
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from edge_agent.api.keys import METRICS, services
from edge_agent.gateway.rbac import Permission
from edge_agent.gateway.routing import endpoint


async def _metrics(request: web.Request) -> web.Response:
    metrics = request.app[METRICS]
    # Values kept elsewhere (cameras' states, outbox and sync lag) are read now.
    await services(request).gauges.refresh(metrics)
    body = metrics.render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def routes(open_to_all: bool) -> web.RouteTableDef:
    """The metrics route; ``open_to_all`` lets a LAN Prometheus scrape it."""
    table = web.RouteTableDef()
    permission = None if open_to_all else Permission.METRICS_READ
    spec = endpoint("Prometheus metrics", permission=permission)
    table.get("/metrics")(spec(_metrics))
    return table
