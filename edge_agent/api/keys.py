"""Controllers: the typed application keys under which the app keeps its state."""

from __future__ import annotations

from aiohttp import web

from edge_agent.config import Settings
from edge_agent.observability.metrics import Metrics
from edge_agent.services import Services

SETTINGS = web.AppKey("settings", Settings)
SERVICES = web.AppKey("services", Services)
METRICS = web.AppKey("metrics", Metrics)


def services(request: web.Request) -> Services:
    return request.app[SERVICES]
