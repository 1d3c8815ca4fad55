"""Composition root: settings -> clients -> services -> routes.

Everything with a lifetime (the database, the recognizer's HTTP session, the
decoding pool) is opened here and closed here, in reverse order, and every
close runs even when an earlier one fails. The CLI uses :func:`open_services`
to work on the same state without the HTTP server.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Protocol
from zoneinfo import ZoneInfo

from aiohttp import web

from cloud_sync.client import CentralClient
from cloud_sync.protocol import Stream
from edge_agent.api import setup_routes
from edge_agent.api.keys import METRICS, SERVICES, SETTINGS
from edge_agent.clients.events.factory import (
    build_sinks,
    sink_event_types,
    sink_names,
)
from edge_agent.clients.probes import ProbeClient
from edge_agent.clients.recognition.factory import build_recognizer
from edge_agent.clients.recognition.resilient import ResilientRecognizer
from edge_agent.clients.storage.attendance import AttendanceRepository
from edge_agent.clients.storage.audit import AuditRepository
from edge_agent.clients.storage.cameras import CameraRepository
from edge_agent.clients.storage.corrections import CorrectionRepository
from edge_agent.clients.storage.database import Database
from edge_agent.clients.storage.deliveries import DeliveryRepository
from edge_agent.clients.storage.face_images import FaceImageStore
from edge_agent.clients.storage.frames import FrameRepository
from edge_agent.clients.storage.health import HealthRepository
from edge_agent.clients.storage.outbox import OutboxRepository
from edge_agent.clients.storage.people import PeopleRepository
from edge_agent.clients.storage.reviews import ReviewRepository
from edge_agent.clients.storage.security import (
    AccountRepository,
    CameraKeyRepository,
    RevocationRepository,
)
from edge_agent.clients.storage.shifts import ShiftRepository
from edge_agent.clients.storage.spool import SpoolFolder
from edge_agent.clients.storage.streams import StreamRepository
from edge_agent.clients.storage.sync_sources import (
    AuditSource,
    OutboxSource,
    StreamSource,
)
from edge_agent.clock import Clock, SystemClock
from edge_agent.config import Settings, site_token
from edge_agent.gateway.chain import middlewares
from edge_agent.gateway.rate_limit import FailedAuthLimiter, RateLimiter
from edge_agent.imaging.pool import DecodePool
from edge_agent.observability.metrics import Metrics
from edge_agent.observability.tracing import trace_headers
from edge_agent.security.tokens import TokenCodec, load_signing_keys
from edge_agent.services import Services
from edge_agent.services.attendance import AttendanceService
from edge_agent.services.audit import AuditService
from edge_agent.services.auth import AuthService
from edge_agent.services.camera_activity import CameraActivity
from edge_agent.services.cameras import CameraService
from edge_agent.services.corrections import CorrectionService
from edge_agent.services.events import EventDispatcher, EventService
from edge_agent.services.events import consumer_name as sink_consumer
from edge_agent.services.gauges import GaugeService
from edge_agent.services.health import HealthService
from edge_agent.services.ingestion import IngestionService
from edge_agent.services.monitor import HealthMonitor, build_health_monitor
from edge_agent.services.pipeline import FramePipeline
from edge_agent.services.reviews import ReviewService
from edge_agent.services.rules import AttendancePolicy, policy_from_settings
from edge_agent.services.self_checks import SelfCheckSources
from edge_agent.services.shifts import ShiftService
from edge_agent.services.status import StatusService
from edge_agent.services.streams import StreamService
from edge_agent.services.sync import SyncService
from edge_agent.services.users import UserService

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Clients:
    db: Database
    recognizer: ResilientRecognizer
    decoder: DecodePool
    spool: SpoolFolder
    metrics: Metrics
    clock: Clock


@asynccontextmanager
async def open_services(
    settings: Settings,
    clock: Clock | None = None,
    *,
    metrics: Metrics | None = None,
    run_pipeline: bool = False,
) -> AsyncIterator[Services]:
    """Open every client the settings describe and wire the services onto them.

    ``run_pipeline`` starts the frame workers (the daemon); the CLI leaves
    them off, so that a maintenance command never decides frames.
    """
    async with AsyncExitStack() as stack:
        db = Database(settings.storage.database_path, settings.storage.busy_timeout_ms)
        await db.open()
        stack.push_async_callback(db.close)

        recognizer = build_recognizer(settings.recognizer)
        await recognizer.open()
        stack.push_async_callback(recognizer.close)

        decoder = DecodePool(settings.imaging.decode_workers)
        stack.callback(decoder.close)

        spool = SpoolFolder(
            settings.spool.folder or settings.storage.data_dir / "spool"
        )
        clients = _Clients(
            db, recognizer, decoder, spool, metrics or Metrics(), clock or SystemClock()
        )
        services, background = _wire(settings, clients, daemon=run_pipeline)
        # Background workers start in the daemon only, and stop (in reverse
        # order) before the database closes.
        for worker in background if run_pipeline else []:
            await worker.start()
            stack.push_async_callback(worker.stop)
        yield services


def _token_codec(settings: Settings) -> TokenCodec:
    auth = settings.auth
    secret_file = auth.signing_key_file or settings.storage.data_dir / "jwt-signing.key"
    keys = load_signing_keys(
        auth.algorithm, secret_file, auth.private_key_file, auth.public_key_file
    )
    return TokenCodec(keys, auth.issuer, auth.audience, auth.leeway_s)


class _Background(Protocol):
    async def start(self) -> object: ...

    async def stop(self) -> None: ...


def _wire(
    settings: Settings, clients: _Clients, *, daemon: bool
) -> tuple[Services, list[_Background]]:
    """Every service on ``clients``, and the background workers they need."""
    db, clock = clients.db, clients.clock
    people = PeopleRepository(db)
    keys = CameraKeyRepository(db)
    audit = AuditService(AuditRepository(db), clock)
    dispatcher, events = _events(settings, clients, audit, daemon=daemon)

    camera_repository = CameraRepository(db)
    cameras = CameraService(
        camera_repository, keys, audit, clock, settings.auth.key_rotation_grace_s
    )
    activity = CameraActivity(clock, settings.monitor.default_expected_interval_s)

    policy = policy_from_settings(settings.attendance)
    shift_repository = ShiftRepository(db)
    attendance = _attendance(
        settings, clients, people, policy, shift_repository, dispatcher.wake
    )

    pipeline, ingestion = _frame_path(settings, clients, cameras, attendance, activity)
    sync = _sync(settings, clients, audit, on_events=dispatcher.wake)
    monitor = _monitor(
        settings, clients, cameras, activity, pipeline, sync, dispatcher.wake
    )

    health = HealthService(db, pipeline, clients.recognizer)
    services = Services(
        users=_users(settings, clients, people, audit),
        cameras=cameras,
        attendance=attendance,
        ingestion=ingestion,
        auth=_auth(settings, db, keys, audit, clock),
        audit=audit,
        health=health,
        streams=_streams(clients, cameras, ingestion, audit, activity),
        shifts=ShiftService(shift_repository, people, audit, clock, policy.timezone),
        reviews=ReviewService(
            ReviewRepository(db), attendance, camera_repository, audit, clock
        ),
        corrections=CorrectionService(
            CorrectionRepository(db), attendance, camera_repository, audit, clock
        ),
        events=events,
        sync=sync,
        status=StatusService(
            attendance, cameras, health, sync, clock, settings.site_id
        ),
        gauges=GaugeService(cameras, events, sync, clients.recognizer),
    )
    return services, [pipeline, dispatcher, monitor, sync]


def _attendance(
    settings: Settings,
    clients: _Clients,
    people: PeopleRepository,
    policy: AttendancePolicy,
    shifts: ShiftRepository,
    on_events: Callable[[], None],
) -> AttendanceService:
    """The rules that make a decision of a recognition, and its records."""
    return AttendanceService(
        AttendanceRepository(clients.db, ship_decisions=settings.sync.send_decisions),
        people,
        policy,
        clients.clock,
        shifts=shifts,
        on_events=on_events,
        metrics=clients.metrics,
        unknown_face_interval_s=settings.events.unknown_face_interval_s,
    )


def _streams(
    clients: _Clients,
    cameras: CameraService,
    ingestion: IngestionService,
    audit: AuditService,
    activity: CameraActivity,
) -> StreamService:
    """Video sources the appliance pulls, feeding the same ingestion as pushes."""
    return StreamService(
        StreamRepository(clients.db),
        cameras,
        ingestion.submit,
        clients.clock,
        audit=audit,
        activity=activity,
    )


def _monitor(
    settings: Settings,
    clients: _Clients,
    cameras: CameraService,
    activity: CameraActivity,
    pipeline: FramePipeline,
    sync: SyncService,
    on_events: Callable[[], None],
) -> HealthMonitor:
    """Camera liveness, probes and the appliance's self-checks, on a schedule."""
    monitor = settings.monitor
    sources = SelfCheckSources(
        data_dir=settings.storage.data_dir,
        spool=settings.spool,
        backlog=pipeline.backlog,
        recognizer=clients.recognizer,
        sync_lag_s=sync.oldest_unsent_s,
    )
    return build_health_monitor(
        monitor,
        ZoneInfo(settings.attendance.timezone),
        cameras,
        HealthRepository(clients.db),
        activity,
        ProbeClient(monitor.probe_timeout_s, monitor.max_concurrent_probes),
        sources,
        clients.clock,
        on_events=on_events,
    )


def _sync(
    settings: Settings,
    clients: _Clients,
    audit: AuditService,
    *,
    on_events: Callable[[], None],
) -> SyncService:
    """The uploader of every stream; idle (status only) without a central URL."""
    sync = settings.sync
    outbox = OutboxRepository(clients.db)
    sources: dict[Stream, StreamSource] = {
        Stream.ATTENDANCE: OutboxSource(outbox, Stream.ATTENDANCE.value),
        Stream.AUDIT: AuditSource(AuditRepository(clients.db)),
        Stream.EVENTS: OutboxSource(outbox, Stream.EVENTS.value),
    }
    if sync.send_decisions:
        sources[Stream.DECISIONS] = OutboxSource(outbox, Stream.DECISIONS.value)
    client: Callable[[], CentralClient] | None = None
    if sync.url is not None:
        client = partial(
            CentralClient,
            sync.url,
            site_token(sync),
            timeout_s=sync.timeout_s,
            extra_headers=trace_headers,
        )

    return SyncService(
        sources,
        DeliveryRepository(clients.db),
        outbox,
        client,
        sync,
        settings.site_id,
        clients.clock,
        on_events=on_events,
        consumers={
            Stream.EVENTS: [sink_consumer(n) for n in sink_names(settings.events)]
        },
        audit=audit,
    )


def _events(
    settings: Settings, clients: _Clients, audit: AuditService, *, daemon: bool
) -> tuple[EventDispatcher, EventService]:
    """The outbox's delivery to the sinks; a maintenance command gets none."""
    outbox, deliveries = OutboxRepository(clients.db), DeliveryRepository(clients.db)
    sinks = build_sinks(settings.events, settings.site_id, clients.clock)
    dispatcher = EventDispatcher(
        outbox,
        deliveries,
        sinks if daemon else [],
        settings.events,
        clients.clock,
        metrics=clients.metrics,
    )
    service = EventService(
        outbox,
        deliveries,
        sink_names(settings.events),
        clients.clock,
        audit=audit,
        on_redrive=dispatcher.wake,
        event_types=sink_event_types(settings.events),
    )
    return dispatcher, service


def _frame_path(
    settings: Settings,
    clients: _Clients,
    cameras: CameraService,
    attendance: AttendanceService,
    activity: CameraActivity,
) -> tuple[FramePipeline, IngestionService]:
    """The spool's two halves: acceptance, and the workers that decide."""
    frames = FrameRepository(clients.db, settings.spool.group_commit_ms / 1000)
    pipeline = FramePipeline(
        clients.spool,
        frames,
        cameras,
        clients.decoder,
        clients.recognizer,
        attendance,
        settings.spool,
        settings.imaging,
        clients.metrics,
        clients.clock,
    )
    ingestion = IngestionService(
        cameras,
        frames,
        clients.spool,
        pipeline,
        attendance,
        settings.spool,
        settings.imaging,
        clients.metrics,
        clients.clock,
        activity=activity,
    )
    return pipeline, ingestion


def _users(
    settings: Settings, clients: _Clients, people: PeopleRepository, audit: AuditService
) -> UserService:
    return UserService(
        people,
        clients.recognizer,
        FaceImageStore(settings.storage.data_dir / "faces"),
        clients.decoder,
        audit,
        clients.clock,
        imaging=settings.imaging,
        min_face_px=settings.enrollment.min_face_px,
    )


def _auth(
    settings: Settings,
    db: Database,
    keys: CameraKeyRepository,
    audit: AuditService,
    clock: Clock,
) -> AuthService:
    return AuthService(
        AccountRepository(db),
        keys,
        RevocationRepository(db),
        _token_codec(settings),
        audit,
        settings.auth,
        clock,
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
    app[METRICS] = Metrics()

    async def services_context(app: web.Application) -> AsyncIterator[None]:
        async with open_services(
            settings, clock, metrics=app[METRICS], run_pipeline=True
        ) as services:
            app[SERVICES] = services
            # Stream readers run in the daemon only, and stop before the
            # database closes.
            await services.streams.start()
            try:
                yield
            finally:
                await services.streams.stop()

    app.cleanup_ctx.append(services_context)
    setup_routes(app, settings.auth.open_metrics, settings.auth.open_status_page)
    return app
