"""Composition root: settings -> clients -> services -> routes.

Everything with a lifetime (the database, the recognizer's HTTP session, the
decoding pool) is opened here and closed here, in reverse order, and every
close runs even when an earlier one fails. The CLI uses :func:`open_services`
to work on the same state without the HTTP server.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta
from zoneinfo import ZoneInfo

from aiohttp import web

from edge_agent.api import setup_routes
from edge_agent.api.keys import METRICS, SERVICES, SETTINGS
from edge_agent.clients.recognition.compreface import CompreFaceClient
from edge_agent.clients.storage.audit import AuditRepository
from edge_agent.clients.storage.database import Database
from edge_agent.clients.storage.repositories import (
    AttendanceRepository,
    CameraRepository,
    PeopleRepository,
)
from edge_agent.clients.storage.security import (
    AccountRepository,
    CameraKeyRepository,
    RevocationRepository,
)
from edge_agent.clock import Clock, SystemClock
from edge_agent.config import Settings
from edge_agent.gateway.chain import middlewares
from edge_agent.gateway.rate_limit import FailedAuthLimiter, RateLimiter
from edge_agent.imaging.pool import DecodePool
from edge_agent.observability.metrics import HttpMetrics
from edge_agent.security.tokens import TokenCodec, load_signing_keys
from edge_agent.services import Services
from edge_agent.services.attendance import AttendanceService
from edge_agent.services.audit import AuditService
from edge_agent.services.auth import AuthService
from edge_agent.services.cameras import CameraService
from edge_agent.services.ingestion import IngestionService
from edge_agent.services.rules import AttendancePolicy
from edge_agent.services.users import UserService

logger = logging.getLogger(__name__)


@asynccontextmanager
async def open_services(
    settings: Settings, clock: Clock | None = None
) -> AsyncIterator[Services]:
    """Open every client the settings describe and wire the services onto them."""
    clock = clock or SystemClock()
    async with AsyncExitStack() as stack:
        db = Database(settings.storage.database_path, settings.storage.busy_timeout_ms)
        await db.open()
        stack.push_async_callback(db.close)

        recognizer = _recognizer(settings)
        await recognizer.open()
        stack.push_async_callback(recognizer.close)

        decoder = DecodePool(settings.imaging.decode_workers)
        stack.callback(decoder.close)

        yield _wire(settings, db, recognizer, decoder, clock)


def _recognizer(settings: Settings) -> CompreFaceClient:
    rec = settings.recognizer
    return CompreFaceClient(
        rec.url,
        rec.api_key.get_secret_value(),
        timeout_s=rec.timeout_s,
        det_prob_threshold=rec.det_prob_threshold,
        prediction_count=rec.prediction_count,
    )


def _policy(settings: Settings) -> AttendancePolicy:
    rules = settings.attendance
    return AttendancePolicy(
        match_threshold=rules.match_threshold,
        duplicate_window=timedelta(seconds=rules.duplicate_window_s),
        timezone=ZoneInfo(rules.timezone),
    )


def _token_codec(settings: Settings) -> TokenCodec:
    auth = settings.auth
    secret_file = auth.signing_key_file or settings.storage.data_dir / "jwt-signing.key"
    keys = load_signing_keys(
        auth.algorithm, secret_file, auth.private_key_file, auth.public_key_file
    )
    return TokenCodec(keys, auth.issuer, auth.audience, auth.leeway_s)


def _wire(
    settings: Settings,
    db: Database,
    recognizer: CompreFaceClient,
    decoder: DecodePool,
    clock: Clock,
) -> Services:
    people = PeopleRepository(db)
    keys = CameraKeyRepository(db)
    audit = AuditService(AuditRepository(db), clock)
    cameras = CameraService(
        CameraRepository(db), keys, audit, clock, settings.auth.key_rotation_grace_s
    )
    attendance = AttendanceService(
        AttendanceRepository(db), people, _policy(settings), clock
    )
    auth = AuthService(
        AccountRepository(db),
        keys,
        RevocationRepository(db),
        _token_codec(settings),
        audit,
        settings.auth,
        clock,
    )
    return Services(
        users=UserService(people, recognizer, decoder, audit, clock),
        cameras=cameras,
        attendance=attendance,
        ingestion=IngestionService(cameras, decoder, recognizer, attendance, clock),
        auth=auth,
        audit=audit,
    )


def create_app(settings: Settings, clock: Clock | None = None) -> web.Application:
    """The appliance's aiohttp application; its clients open on startup."""
    limits = settings.rate_limit
    failures = FailedAuthLimiter(limits.failed_auth_per_minute, limits.max_buckets)
    app = web.Application(
        middlewares=middlewares(RateLimiter(limits), failures),
        client_max_size=settings.server.max_body_bytes,
    )
    app[SETTINGS] = settings
    app[METRICS] = HttpMetrics()

    async def services_context(app: web.Application) -> AsyncIterator[None]:
        async with open_services(settings, clock) as services:
            app[SERVICES] = services
            yield

    app.cleanup_ctx.append(services_context)
    setup_routes(app, settings.auth.open_metrics)
    return app
