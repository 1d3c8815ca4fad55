"""A test's own subscriber on the local broker, and a cleaner of what it retained."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import aiomqtt


@dataclass(frozen=True)
class Seen:
    topic: str
    payload: bytes
    retain: bool
    qos: int


@dataclass
class Watcher:
    """Collects every message under ``prefix`` as it arrives."""

    prefix: str
    messages: list[Seen] = field(default_factory=list)

    def on(self, topic: str) -> list[Seen]:
        return [m for m in self.messages if m.topic == topic]

    async def wait(self, topic: str, payload: bytes, timeout_s: float = 5.0) -> Seen:
        """The first message of ``payload`` on ``topic`` (bounded wait)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for message in self.on(topic):
                if message.payload == payload:
                    return message
            await asyncio.sleep(0.01)
        raise AssertionError(f"no {payload!r} on {topic}: {self.on(topic)}")

    async def wait_count(self, topic: str, count: int, timeout_s: float = 5.0) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.on(topic)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.on(topic))} of {count} on {topic}")
            await asyncio.sleep(0.01)


def unique_prefix() -> str:
    return f"edge-test-{uuid.uuid4().hex[:12]}"


@asynccontextmanager
async def watching(host: str, port: int, prefix: str) -> AsyncIterator[Watcher]:
    """Subscribe to ``prefix/#`` for the block; clear what was retained after."""
    watcher = Watcher(prefix)
    async with aiomqtt.Client(host, port, identifier=f"watch-{prefix}") as client:
        await client.subscribe(f"{prefix}/#", qos=1)
        reader = asyncio.create_task(_collect(client, watcher), name="mqtt-watch")
        try:
            yield watcher
        finally:
            reader.cancel()
            await asyncio.wait([reader])
            await _clear_retained(client, watcher)


async def _collect(client: aiomqtt.Client, watcher: Watcher) -> None:
    async for message in client.messages:
        payload = message.payload
        body = payload if isinstance(payload, bytes) else str(payload).encode()
        seen = Seen(str(message.topic), body, message.retain, message.qos)
        watcher.messages.append(seen)


async def _clear_retained(client: aiomqtt.Client, watcher: Watcher) -> None:
    """An empty retained message removes the retained one (MQTT 3.1.1, 3.3.1.3)."""
    for topic in {m.topic for m in watcher.messages}:
        await client.publish(topic, b"", qos=1, retain=True)
