"""Ingest service: receive one batch from a site, store it once, answer the ack."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from cloud_sync.protocol import BatchAck, Stream
from cloud_sync.server.batches import prepare_batch
from cloud_sync.server.settings import SyncSettings
from cloud_sync.server.store.model import BatchOutcome, PreparedBatch, Store

logger = logging.getLogger(__name__)


class IngestService:
    """Turns a site's batch into stored records and the acknowledgement."""

    def __init__(
        self, store: Store, settings: SyncSettings, clock: Callable[[], datetime]
    ) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock

    async def receive(
        self, site_id: str, stream: Stream, key: str, document: Any
    ) -> BatchAck:
        """Check and apply one batch; raise a ``SyncProblem`` when refused.

        The site's contact time and clock skew are recorded once the batch
        parses, even when it is then refused, since the site did reach us.
        """
        received_at = self._clock()
        received = prepare_batch(
            site_id,
            stream,
            key,
            document,
            max_records=self._settings.max_batch_records,
            received_at=received_at,
        )
        skew = round((received.sent_at - received_at).total_seconds(), 3)
        await self._store.record_contact(site_id, received_at, skew)

        batch = received.prepared
        outcome = await self._store.apply_batch(batch)
        logger.info(
            "Batch %s/%s seq %d-%d applied: acked %d, %d quarantined",
            site_id,
            stream.value,
            batch.first_seq,
            batch.last_seq,
            outcome.acked_seq,
            len(outcome.quarantined),
        )
        return self._ack(batch, outcome, skew)

    def _ack(
        self, batch: PreparedBatch, outcome: BatchOutcome, skew: float
    ) -> BatchAck:
        """The answer to ``batch``; the skew is told only beyond the tolerance."""
        tolerance = self._settings.clock_skew_tolerance_s
        return BatchAck(
            site_id=batch.site_id,
            stream=batch.stream,
            acked_seq=outcome.acked_seq,
            quarantined=outcome.quarantined,
            server_time=batch.received_at,
            clock_skew_s=skew if abs(skew) > tolerance else None,
        )
