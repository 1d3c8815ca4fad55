"""Controllers: thin aiohttp handlers, one module per resource."""

from __future__ import annotations

from aiohttp import web

from edge_agent.api import (
    attendance,
    audit,
    auth,
    cameras,
    events,
    frames,
    health,
    metrics,
    openapi,
    reviews,
    shifts,
    status_page,
    streams,
    sync,
    users,
)
from edge_agent.gateway.routing import check_every_route_declared


def setup_routes(
    app: web.Application, open_metrics: bool, open_status_page: bool = True
) -> None:
    modules = (
        health,
        openapi,
        auth,
        users,
        cameras,
        frames,
        streams,
        attendance,
        reviews,
        shifts,
        audit,
        events,
        sync,
    )
    for module in modules:
        app.router.add_routes(module.routes)
    app.router.add_routes(metrics.routes(open_metrics))
    app.router.add_routes(status_page.routes(open_status_page))
    check_every_route_declared(app)
