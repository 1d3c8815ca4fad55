"""Controllers: thin aiohttp handlers, one module per resource."""

from __future__ import annotations

from aiohttp import web

from edge_agent.api import attendance, cameras, frames, health, users


def setup_routes(app: web.Application) -> None:
    for module in (health, users, cameras, frames, attendance):
        app.router.add_routes(module.routes)
