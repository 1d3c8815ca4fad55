"""Site admin CLI: ``edge-agent serve`` runs the daemon."""

from __future__ import annotations

import logging
from typing import Annotated

import typer
from aiohttp import web

from edge_agent import __version__
from edge_agent.app import create_app
from edge_agent.cli.common import ConfigOption, DataDirOption, settings_from
from edge_agent.observability.logging import setup_logging

logger = logging.getLogger(__name__)


def serve(
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
) -> None:
    """Run the appliance's HTTP API until SIGINT or SIGTERM."""
    server = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    settings = settings_from(config, data_dir, **server)
    setup_logging(settings.logging.level, settings.logging.format)
    logger.info(
        "Edge agent %s for site %s serving on http://%s:%d, data in %s",
        __version__,
        settings.site_id,
        settings.server.host,
        settings.server.port,
        settings.storage.data_dir,
    )
    web.run_app(
        create_app(settings),
        host=settings.server.host,
        port=settings.server.port,
        shutdown_timeout=settings.server.shutdown_timeout_s,
        access_log=None,
        print=None,
    )
    logger.info("Edge agent stopped")
