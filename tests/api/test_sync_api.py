"""``/v1/sync``: status, a round now, dead letters, resume and redrive, against a
central server running in the same process on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from cloud_sync.protocol import Stream
from cloud_sync.server.tokens import new_token
from edge_agent.clients.storage.outbox import NewRecord, OutboxRepository
from edge_agent.models import Role
from tests.api.conftest import Appliance, ApplianceFactory
from tests.cloud_sync.conftest import central_settings, start_central

# The appliance's default site id; the central server must know it.
SITE = "site-1"
PROBLEM = "application/problem+json"


@dataclass(frozen=True)
class Office:
    url: str
    token: str


@pytest.fixture
async def office(tmp_path: Path) -> AsyncIterator[Office]:
    """A central server on SQLite with the appliance's site registered."""
    settings = central_settings(f"sqlite://{tmp_path / 'central.sqlite3'}", new_token())
    server, token = await start_central(settings, SITE)
    try:
        yield Office(f"http://127.0.0.1:{server.port}", token)
    finally:
        await server.stop()


@pytest.fixture
async def synced(
    make_appliance: ApplianceFactory, office: Office
) -> AsyncIterator[Appliance]:
    """The appliance, its uploader pointed at ``office`` with short pauses."""
    sync = {
        "url": office.url,
        "site_token": office.token,
        "backoff_base_s": 0.01,
        "backoff_cap_s": 0.1,
        "idle_interval_s": 0.1,
    }
    async with make_appliance(sync=sync) as running:
        yield running


@pytest.fixture
async def admin(synced: Appliance) -> AsyncIterator[aiohttp.ClientSession]:
    """An admin's session on the synced appliance."""
    async with synced.session(await synced.token(Role.ADMIN)) as session:
        yield session


async def _add_marks(appliance: Appliance, count: int, **payload: Any) -> None:
    db = appliance.services.audit._repository._db
    outbox = OutboxRepository(db)
    now = datetime.now(UTC)
    for n in range(count):
        body = {"person_id": f"p{n}", "mark_id": n, **payload}
        await outbox.add(NewRecord("attendance", "mark.recorded", now, body))


async def _streams(api: aiohttp.ClientSession) -> dict[str, dict[str, Any]]:
    async with api.get("/v1/sync/status") as response:
        assert response.status == 200
        body = await response.json()
    return {s["stream"]: s for s in body["streams"]}


async def _until(
    api: aiohttp.ClientSession,
    check: Callable[[dict[str, dict[str, Any]]], bool],
    timeout_s: float = 10,
) -> dict[str, dict[str, Any]]:
    """The status once ``check`` holds for it (polled, bounded)."""
    async with asyncio.timeout(timeout_s):
        while True:
            streams = await _streams(api)
            if check(streams):
                return streams
            await asyncio.sleep(0.02)


def _caught_up(streams: dict[str, dict[str, Any]]) -> bool:
    lag: int = streams["attendance"]["lag_records"]
    return lag == 0


async def test_status_lists_every_stream_and_a_round_now_ships_the_marks(
    synced: Appliance, admin: aiohttp.ClientSession
) -> None:
    async with admin.get("/v1/sync/status") as response:
        body = await response.json()
    assert body["enabled"] is True
    assert [s["stream"] for s in body["streams"]] == ["attendance", "audit", "events"]

    await _add_marks(synced, 5)
    async with admin.post("/v1/sync/now") as response:
        assert response.status == 202
        assert await response.json() == {"enabled": True}
    streams = await _until(admin, _caught_up)

    assert streams["attendance"]["acked"] == streams["attendance"]["head"] == 5
    assert streams["attendance"]["last_success_at"] is not None
    assert streams["attendance"]["dead_letters"] == 0


async def test_a_quarantined_record_is_a_dead_letter_that_can_be_redriven(
    synced: Appliance, admin: aiohttp.ClientSession
) -> None:
    await _add_marks(synced, 2)
    await _add_marks(synced, 1, person_id="")
    await _add_marks(synced, 2)
    await _until(admin, lambda s: _caught_up(s) and s["attendance"]["dead_letters"] > 0)

    async with admin.get("/v1/sync/dead-letters?stream=attendance") as response:
        letters = (await response.json())["dead_letters"]
    assert [(d["stream"], d["seq"], d["state"]) for d in letters] == [
        ("attendance", 3, "dead")
    ]
    assert "person_id" in letters[0]["reason"]

    async with admin.post(
        "/v1/sync/streams/attendance/redrive", json={"seqs": [3]}
    ) as response:
        assert response.status == 200
        assert await response.json() == {"stream": "attendance", "queued": [3]}
    # Sent again, still refused by the office: set aside again, the rest held.
    streams = await _until(admin, _caught_up)
    assert streams["attendance"]["acked"] == 5


async def test_a_stopped_stream_waits_for_resume(
    synced: Appliance, admin: aiohttp.ClientSession
) -> None:
    sync = synced.services.sync
    cursor = await sync._cursor(Stream.ATTENDANCE)
    await sync._stop(Stream.ATTENDANCE, cursor, "an admin is looking")
    await _add_marks(synced, 3)
    async with admin.post("/v1/sync/now") as response:
        assert response.status == 202
    streams = await _until(admin, lambda s: s["attendance"]["state"] == "stopped")
    assert streams["attendance"]["acked"] == 0

    async with admin.post("/v1/sync/streams/attendance/resume") as response:
        assert response.status == 200
        assert await response.json() == {"stream": "attendance", "resumed": True}
    streams = await _until(admin, _caught_up)
    assert streams["attendance"]["acked"] == 3
    assert streams["attendance"]["state"] != "stopped"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        pytest.param("GET", "/v1/sync/status", id="status"),
        pytest.param("POST", "/v1/sync/now", id="now"),
        pytest.param("GET", "/v1/sync/dead-letters", id="dead-letters"),
        pytest.param("POST", "/v1/sync/streams/attendance/resume", id="resume"),
        pytest.param("POST", "/v1/sync/streams/attendance/redrive", id="redrive"),
    ],
)
async def test_a_user_may_not_see_or_steer_sync(
    synced: Appliance, method: str, path: str
) -> None:
    async with (
        synced.session(await synced.token(Role.USER)) as user,
        user.request(method, path, json={} if method == "POST" else None) as response,
    ):
        assert response.status == 403
        assert response.content_type == PROBLEM


@pytest.mark.parametrize(
    ("method", "path"),
    [
        pytest.param("POST", "/v1/sync/streams/nope/resume", id="resume"),
        pytest.param("POST", "/v1/sync/streams/nope/redrive", id="redrive"),
        pytest.param("GET", "/v1/sync/dead-letters?stream=nope", id="dead-letters"),
        # A stream of the protocol that this site does not ship.
        pytest.param("POST", "/v1/sync/streams/decisions/resume", id="not-shipped"),
    ],
)
async def test_an_unknown_stream_is_a_client_error(
    admin: aiohttp.ClientSession, method: str, path: str
) -> None:
    body: dict[str, Any] | None = {} if method == "POST" else None
    async with admin.request(method, path, json=body) as response:
        problem = await response.json(content_type=PROBLEM)
    # The domain answers invalid input with 422 (edge_agent/errors.py).
    assert response.status == 422
    assert problem["status"] == 422
    assert "stream" in str(problem)
