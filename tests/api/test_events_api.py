"""HTTP API of events: an unknown face becomes an event a webhook receives;
listing, sink status, dead letters and redrive over HTTP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from synthetic_faces import encode_jpeg, face_image

from edge_agent.models import Role
from tests.api.conftest import ApplianceFactory, decided, read_json
from tests.support import JPEG
from tests.webhook_receiver import WebhookReceiver


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    """A webhook receiver that refuses (422) until told otherwise."""
    running = WebhookReceiver()
    running.status = 422
    await running.start()
    yield running
    await running.stop()


async def _caught_up(api: aiohttp.ClientSession) -> dict[str, Any]:
    """The sink once its cursor moved past what its receiver took (bounded)."""
    deadline = time.monotonic() + 5
    while True:
        async with api.get("/v1/events/sinks") as r:
            (sink,) = (await read_json(r, 200))["sinks"]
        if sink["lag"] == 0 or time.monotonic() > deadline:
            return dict(sink)
        await asyncio.sleep(0.02)


async def _dead(api: aiohttp.ClientSession) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        async with api.get(
            "/v1/events/dead-letters", params={"sink": "webhook:vms"}
        ) as r:
            letters: list[dict[str, Any]] = (await read_json(r, 200))["dead_letters"]
        if letters:
            return letters
        await asyncio.sleep(0.02)
    raise AssertionError("no dead letter in time")


async def test_events_over_http(
    make_appliance: ApplianceFactory, receiver: WebhookReceiver
) -> None:
    hook = {"name": "vms", "url": receiver.url, "secret": "s", "timeout_s": 2.0}
    events = {"webhooks": [hook], "backoff_base_s": 0.02, "backoff_cap_s": 0.05}
    async with (
        make_appliance(events=events) as appliance,
        appliance.session(await appliance.token(Role.ADMIN)) as api,
    ):
        async with api.post("/v1/cameras", json={"id": "gate"}) as r:
            assert r.status == 201
        headers = {**JPEG, "X-Camera-Id": "gate"}
        async with api.post(
            "/v1/frames", data=encode_jpeg(face_image("x")), headers=headers
        ) as r:
            frame = await decided(api, (await r.json())["frame_id"])

        async with api.get("/v1/events", params={"type": "face.unknown"}) as r:
            listed = await read_json(r, 200)
        (letter,) = await _dead(api)
        receiver.status = 200
        async with api.post(
            "/v1/events/dead-letters/redrive", json={"sink": "webhook:vms"}
        ) as r:
            redriven = await read_json(r, 200)
        await receiver.wait_for_events(1)
        sink = await _caught_up(api)
        async with api.post(
            "/v1/events/dead-letters/redrive", json={"sink": "nope"}
        ) as r:
            unknown_sink = r.status
        async with api.get("/v1/events", params={"type": "no.such"}) as r:
            bad_type = r.status

    assert frame["decisions"][0]["outcome"] == "unknown"
    (event,) = listed["events"]
    assert event["type"] == "face.unknown"
    assert event["payload"]["frame_id"] == frame["frame_id"]
    assert event["payload"]["decision_id"] == frame["decisions"][0]["id"]
    assert letter["seq"] == event["seq"]
    assert letter["attempts"] == 1
    assert "422" in letter["reason"]
    assert redriven == {"sink": "webhook:vms", "queued": [event["seq"]]}
    assert receiver.events[0]["id"] == event["id"]
    assert sink["name"] == "webhook:vms"
    assert sink["lag"] == 0
    assert unknown_sink == 404
    assert bad_type == 422


async def test_a_stranger_lingering_at_a_camera_is_one_unknown_face_event(
    make_appliance: ApplianceFactory,
) -> None:
    async with make_appliance() as appliance:
        token = await appliance.token(Role.ADMIN)
        async with appliance.session(token) as api:
            async with api.post("/v1/cameras", json={"id": "gate"}) as r:
                assert r.status == 201
            headers = {**JPEG, "X-Camera-Id": "gate"}
            outcomes = []
            for n in range(3):
                frame = encode_jpeg(face_image(f"stranger-{n}"))
                async with api.post("/v1/frames", data=frame, headers=headers) as r:
                    decided_frame = await decided(api, (await r.json())["frame_id"])
                outcomes.append(decided_frame["decisions"][0]["outcome"])
            async with api.get("/v1/events", params={"type": "face.unknown"}) as r:
                listed = await read_json(r, 200)

    assert outcomes == ["unknown"] * 3
    (event,) = listed["events"]
    assert event["payload"]["held_back"] == 0
