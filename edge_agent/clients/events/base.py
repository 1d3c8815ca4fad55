"""Event clients: what every sink promises, and the envelope all of them send.

The dispatcher (``edge_agent.services.events``) owns ordering, retries and
dead letters; a sink only knows how to hand one record to its receiver once,
and says whether a failure is worth retrying. Every library error a sink
meets becomes :class:`DeliveryFailed` at the sink's boundary.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any, Protocol

from edge_agent.clients.storage.outbox import OutboxRecord
from edge_agent.clock import to_text


class DeliveryFailed(Exception):
    """The receiver did not take the record. ``permanent``: sending the same
    record again cannot succeed, so retrying only delays the next one.
    ``retry_after_s``: how long the receiver asked us to wait, if it said."""

    def __init__(
        self,
        reason: str,
        permanent: bool = False,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.retry_after_s = retry_after_s


class Sink(Protocol):
    """One receiver of events."""

    @property
    def name(self) -> str:
        """Stable and unique among sinks: it names the sink's cursor."""
        ...

    def accepts(self, event_type: str) -> bool:
        """Whether the sink wants events of this type at all."""
        ...

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def deliver(self, record: OutboxRecord) -> None:
        """Hand ``record`` over once, or raise :class:`DeliveryFailed`."""
        ...


def envelope(record: OutboxRecord, site_id: str) -> dict[str, Any]:
    """The JSON document every sink sends for one event. ``id`` stays the same
    across redeliveries, so a receiver de-duplicates on it."""
    return {
        "id": record.id,
        "seq": record.seq,
        "type": record.type,
        "site_id": site_id,
        "occurred_at": to_text(record.occurred_at),
        "payload": record.payload,
    }


def encode(document: dict[str, Any]) -> bytes:
    """Compact, key-sorted JSON: the bytes a signature is computed over."""
    text = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return text.encode("utf-8")


def type_filter(event_types: Collection[str]) -> frozenset[str] | None:
    """The types a sink accepts; ``None`` (every type) when none are listed."""
    return frozenset(event_types) or None


def accepts_type(types: frozenset[str] | None, event_type: str) -> bool:
    """Whether a sink whose :func:`type_filter` is ``types`` wants ``event_type``."""
    return types is None or event_type in types
