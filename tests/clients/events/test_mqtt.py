"""The MQTT sink against the local Mosquitto: event topics, retained camera and
appliance availability, the last will, and reconnecting after a broker loss."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from edge_agent.clients.events.base import DeliveryFailed
from edge_agent.clients.events.mqtt import MqttSink
from edge_agent.config import MqttSettings
from tests.clients.events.conftest import record
from tests.mqtt_watch import Watcher, unique_prefix, watching
from tests.tcp_proxy import TcpProxy


def mqtt_settings(host: str, port: int, prefix: str, **changes: Any) -> MqttSettings:
    values: dict[str, Any] = {
        "enabled": True,
        "host": host,
        "port": port,
        "topic_prefix": prefix,
        "client_id": f"edge-{uuid.uuid4().hex[:10]}",
        "timeout_s": 2.0,
        "reconnect_min_s": 0.05,
        "reconnect_max_s": 0.2,
        **changes,
    }
    return MqttSettings.model_validate(values)


@pytest.fixture
def prefix() -> str:
    """A topic prefix no other test uses."""
    return unique_prefix()


@pytest.fixture
async def watcher(mqtt_broker: tuple[str, int], prefix: str) -> AsyncIterator[Watcher]:
    """Everything published under the test's prefix."""
    async with watching(*mqtt_broker, prefix) as seen:
        yield seen


@pytest.fixture
async def proxy(mqtt_broker: tuple[str, int]) -> AsyncIterator[TcpProxy]:
    """A TCP path to the broker that the test can cut."""
    running = TcpProxy(*mqtt_broker)
    await running.start()
    yield running
    await running.stop()


async def test_publishes_events_and_retained_availability(
    mqtt_broker: tuple[str, int], prefix: str, watcher: Watcher
) -> None:
    sink = MqttSink(mqtt_settings(*mqtt_broker, prefix), "site-9")
    await sink.open()
    await watcher.wait(f"{prefix}/site-9/availability", b"online")

    await sink.deliver(record(3, "camera.offline", camera_id="gate"))
    await sink.deliver(record(4, "face.unknown", camera_id="gate"))
    await sink.close()

    (offline,) = watcher.on(f"{prefix}/site-9/events/camera.offline")
    assert json.loads(offline.payload)["seq"] == 3
    assert json.loads(offline.payload)["site_id"] == "site-9"
    assert offline.qos == 1
    assert len(watcher.on(f"{prefix}/site-9/events/face.unknown")) == 1
    camera = await watcher.wait(
        f"{prefix}/site-9/cameras/gate/availability", b"offline"
    )
    assert camera.retain is False  # live delivery to a subscriber already there
    await watcher.wait(f"{prefix}/site-9/availability", b"offline")


async def test_a_later_subscriber_sees_the_retained_states(
    mqtt_broker: tuple[str, int], prefix: str
) -> None:
    sink = MqttSink(mqtt_settings(*mqtt_broker, prefix), "site-9")
    await sink.open()
    await sink.deliver(record(1, "camera.online", camera_id="door"))

    async with watching(*mqtt_broker, prefix) as later:
        door = await later.wait(f"{prefix}/site-9/cameras/door/availability", b"online")
        appliance = await later.wait(f"{prefix}/site-9/availability", b"online")
        await sink.close()
        await later.wait(f"{prefix}/site-9/availability", b"offline")

    assert door.retain
    assert appliance.retain


async def test_the_last_will_says_offline_and_reconnecting_says_online(
    proxy: TcpProxy, prefix: str, watcher: Watcher
) -> None:
    sink = MqttSink(mqtt_settings("127.0.0.1", proxy.port, prefix), "site-9")
    await sink.open()
    topic = f"{prefix}/site-9/availability"
    await watcher.wait_count(topic, 1)

    proxy.cut()

    await watcher.wait_count(topic, 3)
    assert [m.payload for m in watcher.on(topic)] == [b"online", b"offline", b"online"]
    await sink.deliver(record(1, "face.unknown"))
    await sink.close()


async def test_a_lost_broker_fails_deliveries_until_it_is_back(
    proxy: TcpProxy, prefix: str, watcher: Watcher
) -> None:
    sink = MqttSink(
        mqtt_settings("127.0.0.1", proxy.port, prefix, timeout_s=0.3), "site-9"
    )
    await sink.open()
    await watcher.wait(f"{prefix}/site-9/availability", b"online")

    await proxy.stop()
    with pytest.raises(DeliveryFailed):
        await sink.deliver(record(1, "face.unknown"))
    await proxy.start()

    await sink.deliver(record(2, "face.unknown"))
    await sink.close()
    (event,) = watcher.on(f"{prefix}/site-9/events/face.unknown")
    assert json.loads(event.payload)["seq"] == 2


async def test_the_password_is_never_logged(
    prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    settings = mqtt_settings(
        "127.0.0.1", 1, prefix, username="edge", password="hunter2-secret"
    )
    sink = MqttSink(settings, "site-9")
    await sink.open()

    with pytest.raises(DeliveryFailed):
        await sink.deliver(record(1, "face.unknown"))
    await sink.close()

    assert "hunter2-secret" not in caplog.text
    assert "unreachable" in caplog.text


def test_ids_that_are_not_one_topic_level_are_refused() -> None:
    settings = MqttSettings(enabled=True)

    with pytest.raises(ValueError, match="site id"):
        MqttSink(settings, "a/b")
    assert MqttSink(settings, "s").accepts("face.unknown")
    with pytest.raises(ValueError, match="camera id"):
        MqttSink(settings, "s").camera_topic("cam+1")
