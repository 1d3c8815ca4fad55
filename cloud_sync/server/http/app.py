"""Composition root of the central server: settings -> store -> services -> routes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

from aiohttp import web

from cloud_sync.server.http import batches, office
from cloud_sync.server.http.keys import INGEST, OFFICE, SETTINGS, SITES, STORE
from cloud_sync.server.http.problems import problem_middleware
from cloud_sync.server.http.request_id import request_id_middleware
from cloud_sync.server.ingest import IngestService
from cloud_sync.server.office import OfficeService
from cloud_sync.server.settings import Settings
from cloud_sync.server.sites import SiteService
from cloud_sync.server.store import build_store
from cloud_sync.server.store.model import Store

logger = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


def store_for(settings: Settings) -> Store:
    """The store the settings name, not yet opened."""
    database = settings.database
    return build_store(
        settings.database_url,
        pool_min_size=database.pool_min_size,
        pool_max_size=database.pool_max_size,
        busy_timeout_ms=database.busy_timeout_ms,
    )


def build_app(
    settings: Settings, clock: Callable[[], datetime] = utc_now
) -> web.Application:
    """The aiohttp app; its store opens on startup and closes on cleanup."""
    # The body limits are enforced by cloud_sync.server.http.body while
    # reading; aiohttp's own limit only backs them up.
    app = web.Application(
        middlewares=[request_id_middleware, problem_middleware],
        client_max_size=settings.server.max_body_bytes,
    )
    store = store_for(settings)
    app[SETTINGS] = settings
    app[STORE] = store
    app[INGEST] = IngestService(store, settings.sync, clock)
    app[SITES] = SiteService(store, clock)
    app[OFFICE] = OfficeService(store)
    app.cleanup_ctx.append(_store_context)
    _add_routes(app)
    return app


async def _store_context(app: web.Application) -> AsyncIterator[None]:
    store = app[STORE]
    await store.open()
    yield
    await store.close()


def _add_routes(app: web.Application) -> None:
    app.router.add_post(
        "/v1/sites/{site_id}/streams/{stream}/batches", batches.post_batch
    )
    app.router.add_get("/v1/sites", office.get_sites)
    app.router.add_get("/v1/attendance", office.get_attendance)
    app.router.add_get("/v1/attendance.csv", office.get_attendance_csv)


class CentralServer:
    """The app behind a TCP listener; ``port`` is known once started."""

    def __init__(self, settings: Settings, app: web.Application | None = None) -> None:
        self._settings = settings
        self._app = app or build_app(settings)
        # Bodies are inflated by our own bounded reader, never by aiohttp.
        self._runner = web.AppRunner(
            self._app,
            auto_decompress=False,
            access_log=None,
            shutdown_timeout=settings.server.shutdown_timeout_s,
        )
        self.port = 0

    @property
    def app(self) -> web.Application:
        return self._app

    async def start(self) -> None:
        await self._runner.setup()
        server = self._settings.server
        site = web.TCPSite(self._runner, server.host, server.port)
        await site.start()
        # Port 0 asks the system for a free port; the runner knows which.
        self.port = int(self._runner.addresses[0][1])
        logger.info("Central server listening on %s:%d", server.host, self.port)

    async def stop(self) -> None:
        await self._runner.cleanup()
        logger.info("Central server stopped")
