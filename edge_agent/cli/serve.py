"""Site admin CLI: ``edge-agent serve`` runs the daemon.

The daemon owns its data folder through :class:`DataDirLock` while it runs,
tells systemd when it is ready, what it is doing and that its event loop is
alive (:mod:`edge_agent.observability.systemd`), and stops gracefully on
SIGTERM or SIGINT: it stops accepting connections, gives requests in flight
``server.shutdown_timeout_s`` to finish, then the app's cleanup closes every
client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Annotated

import typer
from aiohttp import web

from edge_agent import __version__
from edge_agent.api.keys import SERVICES
from edge_agent.app import create_app
from edge_agent.cli.common import ConfigOption, DataDirOption, fail, settings_from
from edge_agent.clients.storage.lock import DataDirLock
from edge_agent.config import Settings
from edge_agent.errors import EdgeError
from edge_agent.observability.logging import setup_logging
from edge_agent.observability.systemd import (
    SystemdNotifier,
    heartbeat,
    watchdog_interval,
)

logger = logging.getLogger(__name__)


class _StartFailed(Exception):
    """The daemon could not start; the message is for the operator."""


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
        "Edge agent %s for site %s starting on http://%s:%d, data in %s",
        __version__,
        settings.site_id,
        settings.server.host,
        settings.server.port,
        settings.storage.data_dir,
    )

    lock = DataDirLock(settings.storage.data_dir, "edge-agent serve")
    try:
        lock.acquire()
        asyncio.run(_serve(settings, SystemdNotifier.from_environment()))
    except (EdgeError, _StartFailed) as exc:
        fail(str(exc))
    finally:
        lock.release()
    logger.info("Edge agent stopped")


async def _serve(settings: Settings, notifier: SystemdNotifier) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    runner = web.AppRunner(
        create_app(settings),
        access_log=None,
        shutdown_timeout=settings.server.shutdown_timeout_s,
    )
    try:
        address = await _start(runner, settings)
        await _run_until(stop, runner, address, notifier)
    finally:
        await runner.cleanup()
        notifier.close()


async def _start(runner: web.AppRunner, settings: Settings) -> str:
    """Open the app's clients, then listen; return the address listened on."""
    host, port = settings.server.host, settings.server.port
    try:
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        raise _StartFailed(f"cannot listen on {host}:{port}: {exc}") from exc
    except ValueError as exc:
        # Key files and similar settings that only prove wrong when opened.
        raise _StartFailed(str(exc)) from exc

    bound = runner.addresses[0]
    address = f"{bound[0]}:{bound[1]}"
    logger.info("Edge agent serving on http://%s", address)
    return address


async def _run_until(
    stop: asyncio.Event,
    runner: web.AppRunner,
    address: str,
    notifier: SystemdNotifier,
) -> None:
    """Serve, report to systemd, and return once a stop signal arrives."""

    async def status() -> str:
        return await _status_line(runner.app, address)

    notifier.ready(await status())
    pings = asyncio.create_task(
        heartbeat(notifier, watchdog_interval(), status), name="systemd-heartbeat"
    )
    try:
        await stop.wait()
    finally:
        logger.info("Edge agent stopping: finishing requests in flight")
        notifier.stopping(f"stopping, was serving on {address}")
        pings.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pings


async def _status_line(app: web.Application, address: str) -> str:
    """What ``systemctl status`` shows: the address, the backlog, any trouble."""
    readiness = await app[SERVICES].health.readiness()
    queued = readiness.checks.get("spool_frames", 0)
    line = f"serving on {address}, {queued} frames queued"
    if readiness.reasons:
        line += "; not ready: " + "; ".join(readiness.reasons)
    return line
