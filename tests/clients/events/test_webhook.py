"""The webhook sink against a real loopback HTTP receiver: envelope, headers,
signature, and which failures are worth retrying."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from edge_agent.clients.events.base import DeliveryFailed
from edge_agent.clients.events.webhook import WebhookSink, sign, verify_signature
from edge_agent.config import WebhookSettings
from tests.clients.events.conftest import MOMENT, record
from tests.support import ManualClock
from tests.webhook_receiver import WebhookReceiver

SECRET = "s3cret"
NOW = MOMENT.timestamp()


def _settings(url: str, **changes: object) -> WebhookSettings:
    values: dict[str, object] = {
        "name": "vms",
        "url": url,
        "secret": SecretStr(SECRET),
        "timeout_s": 2.0,
        **changes,
    }
    return WebhookSettings.model_validate(values)


@pytest.fixture
async def sink(receiver: WebhookReceiver) -> AsyncIterator[WebhookSink]:
    """A webhook sink pointed at the receiver, open."""
    opened = WebhookSink(_settings(receiver.url), "site-9", ManualClock(MOMENT))
    await opened.open()
    yield opened
    await opened.close()


async def test_posts_the_envelope_with_its_headers(
    sink: WebhookSink, receiver: WebhookReceiver
) -> None:
    await sink.deliver(record(7, "camera.offline", camera_id="gate"))

    (request,) = receiver.requests
    assert request.event == {
        "id": "event-7",
        "seq": 7,
        "type": "camera.offline",
        "site_id": "site-9",
        "occurred_at": "2026-03-02T08:00:00.000000+00:00",
        "payload": {"camera_id": "gate"},
    }
    assert request.headers["X-Edge-Event-Id"] == "event-7"
    assert request.headers["X-Edge-Event-Type"] == "camera.offline"
    assert request.headers["X-Edge-Timestamp"] == str(int(NOW))
    assert request.headers["Content-Type"] == "application/json"


async def test_signature_verifies_and_refuses_tampering(
    sink: WebhookSink, receiver: WebhookReceiver
) -> None:
    await sink.deliver(record(1, "face.unknown"))

    (request,) = receiver.requests
    stamp, header = (
        request.headers["X-Edge-Timestamp"],
        request.headers["X-Edge-Signature"],
    )
    assert header.startswith("sha256=")
    assert verify_signature(SECRET, stamp, request.body, header, 300, NOW + 10)
    assert not verify_signature("other", stamp, request.body, header, 300, NOW)
    assert not verify_signature(SECRET, stamp, request.body + b" ", header, 300, NOW)
    assert not verify_signature(
        SECRET, str(int(NOW) + 1), request.body, header, 300, NOW
    )
    assert not verify_signature(SECRET, stamp, request.body, header, 300, NOW + 301)
    assert not verify_signature(SECRET, "soon", request.body, header, 300, NOW)


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    body = b'{"a":1}'
    mac = hmac.new(b"key", b"1700000000." + body, hashlib.sha256).hexdigest()

    assert sign("key", "1700000000", body) == f"sha256={mac}"


@pytest.mark.parametrize(
    ("status", "permanent"),
    [(500, False), (503, False), (429, False), (401, False), (422, True), (410, True)],
    ids=["500", "503", "429", "401", "422", "410"],
)
async def test_a_refusal_fails_the_delivery(
    sink: WebhookSink, receiver: WebhookReceiver, status: int, permanent: bool
) -> None:
    receiver.status = status

    with pytest.raises(DeliveryFailed) as failed:
        await sink.deliver(record(1, "face.unknown"))

    assert failed.value.permanent is permanent
    assert str(status) in failed.value.reason


async def test_a_busy_receivers_retry_after_is_passed_on(
    sink: WebhookSink, receiver: WebhookReceiver
) -> None:
    receiver.status = 429
    receiver.answer_headers = {"Retry-After": "7"}

    with pytest.raises(DeliveryFailed) as failed:
        await sink.deliver(record(1, "face.unknown"))

    assert not failed.value.permanent
    assert failed.value.retry_after_s == 7.0


async def test_a_receiver_that_is_down_is_a_transient_failure(
    sink: WebhookSink, receiver: WebhookReceiver
) -> None:
    await receiver.stop()

    with pytest.raises(DeliveryFailed) as failed:
        await sink.deliver(record(1, "face.unknown"))

    assert not failed.value.permanent
    await receiver.start()
    await sink.deliver(record(1, "face.unknown"))
    assert len(receiver.events) == 1


def test_accepts_only_the_listed_types() -> None:
    listed = WebhookSink(
        _settings("http://127.0.0.1:1/", event_types=["camera.offline"]),
        "s",
        ManualClock(MOMENT),
    )
    everything = WebhookSink(_settings("http://127.0.0.1:1/"), "s", ManualClock(MOMENT))

    assert listed.name == "webhook:vms"
    assert listed.accepts("camera.offline")
    assert not listed.accepts("face.unknown")
    assert everything.accepts("face.unknown")
