"""The uploader against a real central server: exactly once, in order, resumable."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.typedefs import Handler
from local_services import free_port

from cloud_sync.client import CentralClient
from cloud_sync.protocol import Stream
from cloud_sync.server.http.app import CentralServer, build_app
from cloud_sync.server.http.keys import SITES
from cloud_sync.server.tokens import new_token
from edge_agent.app import open_services
from edge_agent.clients.storage.audit import AuditFilter
from edge_agent.clients.storage.outbox import NewRecord, OutboxRepository
from edge_agent.config import load_settings
from edge_agent.models import EVENTS_STREAM, local_admin
from edge_agent.observability import tracing
from edge_agent.services import Services
from edge_agent.services.sync import consumer_name
from tests.cloud_sync.conftest import central_settings, start_central

SITE = "site-a"
ADMIN = local_admin("tester")


@dataclass
class Central:
    url: str
    token: str
    database: Path
    server: CentralServer

    def count(self, stream: str, table: str = "records") -> int:
        with sqlite3.connect(self.database) as conn:
            sql = f"SELECT COUNT(*) FROM {table} WHERE site_id = ? AND stream = ?"
            return int(conn.execute(sql, (SITE, stream)).fetchone()[0])

    def seqs(self, stream: str) -> list[int]:
        with sqlite3.connect(self.database) as conn:
            sql = (
                "SELECT seq FROM records WHERE site_id = ? AND stream = ? ORDER BY seq"
            )
            return [row[0] for row in conn.execute(sql, (SITE, stream))]


@pytest.fixture
async def central(tmp_path: Path) -> AsyncIterator[Central]:
    """A central server on a loopback port, with its own SQLite database."""
    database = tmp_path / "central.sqlite3"
    settings = central_settings(f"sqlite://{database}", new_token())
    server, token = await start_central(settings, SITE)
    try:
        yield Central(f"http://127.0.0.1:{server.port}", token, database, server)
    finally:
        await server.stop()


EdgeFactory = Callable[..., AbstractAsyncContextManager[Services]]


@pytest.fixture
def edge(tmp_path: Path) -> EdgeFactory:
    """The site's services, with sync pointed at ``url``."""

    @asynccontextmanager
    async def open_edge(url: str, token: str, **sync: Any) -> AsyncIterator[Services]:
        settings = load_settings(
            overrides={
                "site_id": SITE,
                "storage": {"data_dir": tmp_path / "edge"},
                "sync": {
                    "url": url,
                    "site_token": token,
                    "backoff_base_s": 0.01,
                    "backoff_cap_s": 0.05,
                    **sync,
                },
            }
        )
        async with open_services(settings) as services:
            try:
                yield services
            finally:
                await services.sync.stop()

    return open_edge


async def add_marks(services: Services, count: int, **payload: Any) -> None:
    outbox = OutboxRepository(services.audit._repository._db)
    now = datetime.now(UTC)
    for n in range(count):
        body = {"person_id": f"p{n % 7}", "mark_id": n, **payload}
        await outbox.add(NewRecord("attendance", "mark.recorded", now, body))


async def drain(services: Services, stream: Stream, steps: int = 200) -> None:
    """Step the stream's worker until it has nothing left to send."""
    for _ in range(steps):
        await services.sync.step(stream)
        status = {s.stream: s for s in await services.sync.status()}[stream]
        if status.lag_records == 0 or status.state == "stopped":
            return
    raise AssertionError(f"{stream} did not drain")


async def acked(services: Services, stream: Stream) -> int:
    return {s.stream: s for s in await services.sync.status()}[stream].acked


async def test_a_backlog_made_offline_arrives_exactly_once_in_order(
    central: Central, edge: EdgeFactory
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    async with edge(closed, central.token, batch_records=40) as services:
        await add_marks(services, 300)
        for _ in range(3):
            wait = await services.sync.step(Stream.ATTENDANCE)
            assert wait > 0
        status = {s.stream: s for s in await services.sync.status()}
        assert status["attendance"].acked == 0
        assert status["attendance"].lag_records == 300
        assert "cannot reach" in (status["attendance"].last_error or "")

    async with edge(central.url, central.token, batch_records=40) as services:
        await drain(services, Stream.ATTENDANCE)
        assert await acked(services, Stream.ATTENDANCE) == 300

    assert central.seqs("attendance") == list(range(1, 301))


async def test_a_lost_local_ack_resends_without_duplicating(
    central: Central, edge: EdgeFactory
) -> None:
    async with edge(central.url, central.token, batch_records=50) as services:
        await add_marks(services, 120)
        # As if the site died after the central commit, before its own ack:
        # the central server holds 1-50, the site's cursor is still at 0.
        first = await services.sync._next_batch(
            Stream.ATTENDANCE, services.sync._sources[Stream.ATTENDANCE], 0
        )
        async with CentralClient(central.url, central.token) as client:
            ack = await client.send_batch(SITE, Stream.ATTENDANCE, first, 120)
        assert ack.acked_seq == 50
        assert await acked(services, Stream.ATTENDANCE) == 0

        await drain(services, Stream.ATTENDANCE)

        assert await acked(services, Stream.ATTENDANCE) == 120
    assert central.seqs("attendance") == list(range(1, 121))


async def test_a_cursor_ahead_of_the_server_follows_its_expected_seq(
    central: Central, edge: EdgeFactory
) -> None:
    async with edge(central.url, central.token, batch_records=25) as services:
        await add_marks(services, 60)
        await drain(services, Stream.ATTENDANCE)
        await add_marks(services, 10)
        # The server forgot the last 20 (restored from a backup, say): rewind
        # its view by sending from a site whose cursor runs ahead is refused
        # with a gap; the site follows the server's expected seq.
        await services.sync._deliveries.advance(
            consumer_name("attendance"), 65, datetime.now(UTC), delivered=True
        )

        await drain(services, Stream.ATTENDANCE)

        assert await acked(services, Stream.ATTENDANCE) == 70
    assert central.seqs("attendance") == list(range(1, 71))


async def test_a_bad_record_is_set_aside_and_the_stream_goes_on(
    central: Central, edge: EdgeFactory
) -> None:
    async with edge(central.url, central.token) as services:
        await add_marks(services, 3)
        await add_marks(services, 1, person_id="")
        await add_marks(services, 3)

        await drain(services, Stream.ATTENDANCE)

        letters = await services.sync.dead_letters("attendance")
        assert [(d.seq, d.state.value) for d in letters] == [(4, "dead")]
        assert "person_id" in letters[0].reason
        assert await acked(services, Stream.ATTENDANCE) == 7
    assert central.count("attendance") == 6
    assert central.count("attendance", "quarantine") == 1


async def test_audit_entries_arrive_and_a_rewritten_chain_stops_only_audit(
    central: Central, edge: EdgeFactory
) -> None:
    async with edge(central.url, central.token) as services:
        for n in range(5):
            await services.audit.record(ADMIN, "test.act", target=f"t:{n}")
        await drain(services, Stream.AUDIT)
        assert central.count("audit") == 5
        # Someone deletes the newest entries on the site and writes new ones.
        db = services.audit._repository._db
        async with db.transaction() as conn:
            await conn.execute("DELETE FROM audit_log WHERE seq > 3")
        for n in range(3):
            await services.audit.record(ADMIN, "test.other", target=f"x:{n}")
        await add_marks(services, 4)

        await drain(services, Stream.AUDIT)
        await drain(services, Stream.ATTENDANCE)

        status = {s.stream: s for s in await services.sync.status()}
        assert status["audit"].state == "stopped"
        assert "refuses the audit chain" in (status["audit"].last_error or "")
        assert status["attendance"].acked == 4
        events = await OutboxRepository(db).after(EVENTS_STREAM, 0, 100)
        anomalies = [e for e in events if e.type == "system.anomaly"]
        assert len(anomalies) == 1
        assert anomalies[0].payload["check"] == "sync.audit"
    assert central.count("audit") == 5


async def test_a_stopped_stream_stays_stopped_until_resumed(
    central: Central, edge: EdgeFactory
) -> None:
    async with edge(central.url, central.token) as services:
        await add_marks(services, 2)
        deliveries = services.sync._deliveries
        cursor = await deliveries.cursor(
            consumer_name("attendance"), "attendance", datetime.now(UTC)
        )
        await services.sync._stop(Stream.ATTENDANCE, cursor, "looked at by an admin")

        await services.sync.step(Stream.ATTENDANCE)
        assert await acked(services, Stream.ATTENDANCE) == 0

        await services.sync.resume("attendance", ADMIN)
        await drain(services, Stream.ATTENDANCE)
        assert await acked(services, Stream.ATTENDANCE) == 2


async def test_delivered_outbox_rows_are_pruned_but_seqs_never_reused(
    central: Central, edge: EdgeFactory
) -> None:
    async with edge(central.url, central.token) as services:
        await add_marks(services, 10)
        await drain(services, Stream.ATTENDANCE)
        outbox = OutboxRepository(services.audit._repository._db)
        assert await outbox.after("attendance", 0, 100) == []

        await add_marks(services, 2)
        rows = await outbox.after("attendance", 0, 100)
        assert [r.seq for r in rows] == [11, 12]
        await drain(services, Stream.ATTENDANCE)
    assert central.seqs("attendance") == list(range(1, 13))


async def test_an_unknown_stream_is_a_clear_error(
    central: Central, edge: EdgeFactory
) -> None:
    from edge_agent.errors import InvalidInput

    async with edge(central.url, central.token) as services:
        with pytest.raises(InvalidInput, match="unknown sync stream"):
            await services.sync.resume("nope", ADMIN)


async def test_a_redriven_record_travels_again_and_is_dead_again_if_still_refused(
    central: Central, edge: EdgeFactory
) -> None:
    async with edge(central.url, central.token) as services:
        await add_marks(services, 2)
        await add_marks(services, 1, person_id="")
        await add_marks(services, 2)
        await drain(services, Stream.ATTENDANCE)

        queued = await services.sync.redrive("attendance", None, ADMIN)
        assert queued == [3]
        assert await acked(services, Stream.ATTENDANCE) == 2
        await drain(services, Stream.ATTENDANCE)

        letters = await services.sync.dead_letters("attendance")
        assert [(d.seq, d.state.value) for d in letters] == [(3, "dead")]
        assert await acked(services, Stream.ATTENDANCE) == 5
        page = await services.audit.list_entries(
            AuditFilter(action="sync.redriven"), None, 10
        )
        assert len(page.entries) == 1
    assert central.count("attendance") == 4


async def test_each_batch_carries_a_traceparent_to_the_central_server(
    tmp_path: Path, edge: EdgeFactory
) -> None:
    seen: list[str] = []

    @web.middleware
    async def note(request: web.Request, handler: Handler) -> web.StreamResponse:
        seen.append(request.headers.get("traceparent", ""))
        return await handler(request)

    settings = central_settings(f"sqlite://{tmp_path / 'c.sqlite3'}", new_token())
    app = build_app(settings)
    app.middlewares.insert(0, note)
    server = CentralServer(settings, app)
    await server.start()
    try:
        _, token = await server.app[SITES].add(SITE)
        async with edge(f"http://127.0.0.1:{server.port}", token) as services:
            await add_marks(services, 3)
            await drain(services, Stream.ATTENDANCE)
    finally:
        await server.stop()

    assert seen
    parsed = [tracing.parse_traceparent(header) for header in seen]
    assert all(context is not None for context in parsed)


async def test_records_the_server_expects_but_the_site_lost_stop_the_stream(
    central: Central, edge: EdgeFactory
) -> None:
    async with edge(central.url, central.token) as services:
        await add_marks(services, 5)
        db = services.audit._repository._db
        async with db.transaction() as conn:
            await conn.execute(
                "DELETE FROM outbox WHERE stream = 'attendance' AND seq <= 2"
            )

        for _ in range(3):
            await services.sync.step(Stream.ATTENDANCE)

        status = {s.stream: s for s in await services.sync.status()}["attendance"]
        assert status.state == "stopped"
        assert "expects seq 1" in (status.last_error or "")
    assert central.count("attendance") == 0
