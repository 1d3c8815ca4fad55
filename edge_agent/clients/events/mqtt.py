"""Event clients: events published to an MQTT broker, with availability topics.

Topics, under ``<prefix>/<site_id>``:

- ``events/<type>``: every event accepted, QoS 1, the JSON envelope.
- ``cameras/<camera_id>/availability``: ``online`` or ``offline``, retained,
  after each camera.online or camera.offline event, so a dashboard that
  subscribes later still sees each camera's last state.
- ``availability``: the appliance itself, retained: ``online`` after each
  connect, ``offline`` on a clean close, and ``offline`` as the last will the
  broker publishes when the connection dies without one (MQTT 3.1.1, 3.1.2.5).

One background task keeps the connection: it reconnects with a growing delay
after a broker loss, and publishes ``online`` again each time. A delivery made
while the broker is away fails, and the dispatcher retries it.
"""

from __future__ import annotations

import asyncio
import logging
import ssl

import aiomqtt

from edge_agent.clients.events.base import (
    DeliveryFailed,
    accepts_type,
    encode,
    envelope,
    type_filter,
)
from edge_agent.clients.storage.outbox import OutboxRecord
from edge_agent.config import MqttSettings
from edge_agent.models import EventType

logger = logging.getLogger(__name__)

ONLINE = "online"
OFFLINE = "offline"
_QOS = 1
_CAMERA_STATES = {
    EventType.CAMERA_ONLINE.value: ONLINE,
    EventType.CAMERA_OFFLINE.value: OFFLINE,
}
# Wildcards and the level separator cannot appear inside one topic level
# (MQTT 3.1.1, 4.7.1).
_NOT_IN_A_LEVEL = frozenset("/+#\x00")


def topic_level(value: str, what: str) -> str:
    """``value`` as one topic level; refused when it would not be one."""
    if not value or _NOT_IN_A_LEVEL & set(value):
        raise ValueError(f"{what} {value!r} cannot be an MQTT topic level")
    return value


class MqttSink:
    """Publishes events to one broker over one kept connection."""

    def __init__(self, settings: MqttSettings, site_id: str) -> None:
        self._settings = settings
        self._site_id = topic_level(site_id, "site id")
        self._base = f"{settings.topic_prefix.rstrip('/')}/{self._site_id}"
        self._types = type_filter(settings.event_types)
        self._client_id = settings.client_id or f"edge-agent-{site_id}"
        self._client: aiomqtt.Client | None = None
        self._ready = asyncio.Event()
        self._keeper: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return "mqtt"

    @property
    def availability_topic(self) -> str:
        return f"{self._base}/availability"

    def event_topic(self, event_type: str) -> str:
        return f"{self._base}/events/{event_type}"

    def camera_topic(self, camera_id: str) -> str:
        return (
            f"{self._base}/cameras/{topic_level(camera_id, 'camera id')}/availability"
        )

    def accepts(self, event_type: str) -> bool:
        return accepts_type(self._types, event_type)

    async def open(self) -> None:
        """Start keeping the connection; the first connect happens in it."""
        self._keeper = asyncio.create_task(self._keep_connected(), name="mqtt-sink")

    async def close(self) -> None:
        """Say ``offline`` (retained), then disconnect cleanly."""
        client = self._client
        if client is not None and self._ready.is_set():
            try:
                await self._publish(client, self.availability_topic, OFFLINE, True)
            except aiomqtt.MqttError as exc:
                logger.warning("MQTT could not publish offline on close: %s", exc)
        keeper, self._keeper = self._keeper, None
        if keeper is not None:
            keeper.cancel()
            # wait() rather than awaiting the task: a cancellation of close()
            # itself must still reach the caller.
            await asyncio.wait([keeper])

    async def deliver(self, record: OutboxRecord) -> None:
        client = await self._connected()
        body = encode(envelope(record, self._site_id))
        try:
            await self._publish(client, self.event_topic(record.type), body, False)
            state = _CAMERA_STATES.get(record.type)
            if state is not None:
                await self._publish_camera(client, record, state)
        except aiomqtt.MqttError as exc:
            raise DeliveryFailed(f"MQTT publish failed: {exc}") from exc

    async def _publish_camera(
        self, client: aiomqtt.Client, record: OutboxRecord, state: str
    ) -> None:
        camera_id = record.payload.get("camera_id")
        try:
            topic = self.camera_topic(str(camera_id or ""))
        except ValueError as exc:
            # The event itself went out; only its retained summary cannot.
            logger.warning("MQTT event %d: %s", record.seq, exc)
            return
        await self._publish(client, topic, state, True)

    async def _connected(self) -> aiomqtt.Client:
        """The live client, waiting up to the timeout for a connect."""
        try:
            async with asyncio.timeout(self._settings.timeout_s):
                await self._ready.wait()
        except TimeoutError:
            raise DeliveryFailed("MQTT broker is not connected") from None
        client = self._client
        if client is None:
            raise DeliveryFailed("MQTT broker is not connected")
        return client

    async def _publish(
        self, client: aiomqtt.Client, topic: str, payload: str | bytes, retain: bool
    ) -> None:
        await client.publish(
            topic, payload, qos=_QOS, retain=retain, timeout=self._settings.timeout_s
        )

    async def _keep_connected(self) -> None:
        delay = self._settings.reconnect_min_s
        while True:
            try:
                await self._session()
                delay = self._settings.reconnect_min_s
            except aiomqtt.MqttError as exc:
                logger.warning(
                    "MQTT broker %s:%d unreachable or lost (%s); retrying in %.1f s",
                    self._settings.host,
                    self._settings.port,
                    exc,
                    delay,
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._settings.reconnect_max_s)

    async def _session(self) -> None:
        """One connection, from connect to its loss."""
        client = self._new_client()
        async with client:
            await self._publish(client, self.availability_topic, ONLINE, True)
            self._client = client
            self._ready.set()
            logger.info(
                "MQTT connected to %s:%d as %s",
                self._settings.host,
                self._settings.port,
                self._client_id,
            )
            try:
                # Nothing is subscribed, so the iterator only ends, with an
                # error, when the connection is lost.
                async for _ in client.messages:
                    pass
            finally:
                self._ready.clear()
                self._client = None

    def _new_client(self) -> aiomqtt.Client:
        settings = self._settings
        will = aiomqtt.Will(self.availability_topic, OFFLINE, qos=_QOS, retain=True)
        password = settings.password.get_secret_value() or None
        return aiomqtt.Client(
            settings.host,
            settings.port,
            username=settings.username,
            password=password if settings.username else None,
            identifier=self._client_id,
            will=will,
            keepalive=settings.keepalive_s,
            timeout=settings.timeout_s,
            tls_context=ssl.create_default_context() if settings.tls else None,
        )
