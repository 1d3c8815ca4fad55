"""Gateway: typed keys for what the middlewares leave on a request."""

from __future__ import annotations

from aiohttp import web

from edge_agent.models import Principal

# Who is making the request; absent on public routes.
PRINCIPAL = web.RequestKey("principal", Principal)
