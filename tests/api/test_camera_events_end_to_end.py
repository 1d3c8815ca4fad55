"""A camera falls silent and comes back: the daemon's monitor, outbox and both
sinks, real webhook receiver and real broker, one event per transition."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from synthetic_faces import encode_jpeg, face_image

from edge_agent.clients.events.webhook import verify_signature
from edge_agent.models import Role
from tests.api.conftest import ApplianceFactory
from tests.mqtt_watch import unique_prefix, watching
from tests.support import eventually
from tests.webhook_receiver import WebhookReceiver

SECRET = "shared-with-the-vms"
JPEG = {"Content-Type": "image/jpeg", "X-Camera-Id": "gate"}
CAMERA_TYPES = ("camera.offline", "camera.online")


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    """A running webhook receiver answering 200."""
    running = WebhookReceiver()
    await running.start()
    yield running
    await running.stop()


def _camera_events(receiver: WebhookReceiver) -> list[str]:
    return [e["type"] for e in receiver.events if e["type"] in CAMERA_TYPES]


async def _keep_sending(api: aiohttp.ClientSession, frame: bytes) -> None:
    """A frame every 0.1 s: repeats of the same bytes still show it is alive."""
    while True:
        async with api.post("/v1/frames", data=frame, headers=JPEG) as r:
            assert r.status in (200, 202)
        await asyncio.sleep(0.1)


async def test_silence_then_a_frame_makes_one_offline_and_one_online_event(
    make_appliance: ApplianceFactory,
    receiver: WebhookReceiver,
    mqtt_broker: tuple[str, int],
) -> None:
    host, port = mqtt_broker
    prefix = unique_prefix()
    sections = {
        "monitor": {
            "liveness_interval_s": 0.1,
            "offline_after_missed": 2,
            "self_check_interval_s": 300,
        },
        "events": {
            "backoff_base_s": 0.02,
            "backoff_cap_s": 0.1,
            "poll_interval_s": 0.2,
            "webhooks": [
                {"name": "vms", "url": receiver.url, "secret": SECRET},
            ],
            "mqtt": {
                "enabled": True,
                "host": host,
                "port": port,
                "topic_prefix": prefix,
            },
        },
    }
    availability = f"{prefix}/site-1/cameras/gate/availability"
    frame = encode_jpeg(face_image("nobody-enrolled"))

    async with (
        watching(host, port, prefix) as watcher,
        make_appliance(**sections) as appliance,
    ):
        token = await appliance.token(Role.ADMIN)
        async with appliance.session(token) as api:
            body = {"id": "gate", "expected_interval_s": 0.3}
            async with api.post("/v1/cameras", json=body) as r:
                assert r.status == 201, await r.text()
            async with api.post("/v1/frames", data=frame, headers=JPEG) as r:
                assert r.status == 202

            # Silence: well past 2 intervals, with many liveness ticks.
            await eventually(
                lambda: _camera_events(receiver) == ["camera.offline"], timeout_s=10.0
            )
            await watcher.wait(availability, b"offline")
            await asyncio.sleep(1.0)
            assert _camera_events(receiver) == ["camera.offline"]

            again = encode_jpeg(face_image("someone-else"))
            async with api.post("/v1/frames", data=again, headers=JPEG) as r:
                assert r.status == 202
            # From now on the camera keeps talking, however slow the checks.
            talking = asyncio.create_task(_keep_sending(api, again))
            try:
                await eventually(
                    lambda: "camera.online" in _camera_events(receiver), timeout_s=10.0
                )
                await watcher.wait(availability, b"online")
            finally:
                talking.cancel()

    assert _camera_events(receiver) == ["camera.offline", "camera.online"]
    for request in receiver.requests:
        headers = {k.lower(): v for k, v in request.headers.items()}
        assert verify_signature(
            SECRET,
            headers["x-edge-timestamp"],
            request.body,
            headers["x-edge-signature"],
            tolerance_s=300,
            now=time.time(),
        )
    offline_events = watcher.on(f"{prefix}/site-1/events/camera.offline")
    online_events = watcher.on(f"{prefix}/site-1/events/camera.online")
    assert len(offline_events) == 1
    assert len(online_events) == 1
    assert json.loads(offline_events[0].payload)["payload"]["camera_id"] == "gate"
    states = [m.payload for m in watcher.on(availability) if m.payload]
    assert states[-2:] == [b"offline", b"online"]
