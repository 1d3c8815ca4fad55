"""Fixtures of the event client tests: a webhook receiver and outbox records."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from edge_agent.clients.storage.outbox import OutboxRecord
from edge_agent.models import EVENTS_STREAM
from tests.webhook_receiver import WebhookReceiver

MOMENT = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def record(seq: int, event_type: str, **payload: object) -> OutboxRecord:
    """An outbox record as a sink receives it."""
    return OutboxRecord(
        EVENTS_STREAM, seq, f"event-{seq}", event_type, MOMENT, dict(payload), 1, "b"
    )


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    """A running webhook receiver answering 200."""
    running = WebhookReceiver()
    await running.start()
    yield running
    await running.stop()
