"""Ingest rules: what part of a batch to keep, given what the server holds.

Pure functions, no I/O: the stores call :func:`plan_batch` inside their write
transaction, with the stream's head row locked, so the decision and the
writes it leads to happen under one lock. Ordering and de-duplication use
(site, stream, seq) only, never a clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from cloud_sync.audit_chain import GENESIS_HASH, ChainBreak, chain_break
from cloud_sync.protocol import Stream
from cloud_sync.server.errors import IdempotencyConflict, SequenceGap
from cloud_sync.server.store.model import (
    PreparedBatch,
    QuarantineRow,
    StoredRecord,
    StreamHead,
)


@dataclass(frozen=True, slots=True)
class Plan:
    """The writes a batch leads to, or the chain break that refuses it."""

    records: tuple[StoredRecord, ...] = ()
    quarantined: tuple[QuarantineRow, ...] = ()
    acked_seq: int = 0
    chain_hash: str | None = None
    chain_break: ChainBreak | None = None


def plan_batch(
    batch: PreparedBatch,
    head: StreamHead,
    known_digest: str | None,
    held_hashes: Mapping[int, str],
) -> Plan:
    """Decide ``batch`` against ``head``; raise when it must be refused.

    A gap is refused first: nothing after it can be placed. The audit chain is
    checked before the idempotency digest, so a site that rewrote entries the
    server already holds is reported as a broken chain, not as a key reused.
    """
    expected = head.acked_seq + 1
    if batch.first_seq > expected:
        raise SequenceGap(expected, batch.first_seq)

    chain_hash = head.chain_hash
    if batch.stream is Stream.AUDIT:
        broken = _audit_break(batch, head, held_hashes)
        if broken is not None:
            return Plan(acked_seq=head.acked_seq, chain_break=broken)
        if batch.last_seq > head.acked_seq:
            chain_hash = batch.audit_entries[-1].hash

    if known_digest is not None and known_digest != batch.digest:
        raise IdempotencyConflict(
            f"key {batch.key} was used before for other records",
            key=batch.key,
        )

    return Plan(
        records=tuple(r for r in batch.records if r.seq >= expected),
        quarantined=tuple(q for q in batch.quarantined if q.seq >= expected),
        acked_seq=max(head.acked_seq, batch.last_seq),
        chain_hash=chain_hash,
    )


def _audit_break(
    batch: PreparedBatch, head: StreamHead, held_hashes: Mapping[int, str]
) -> ChainBreak | None:
    """Where the batch's entries disagree with, or fail to continue, the chain."""
    for entry in batch.audit_entries:
        if entry.seq <= head.acked_seq and held_hashes.get(entry.seq) != entry.hash:
            return ChainBreak(entry.seq, "differs from the entry already held")

    fresh = [e for e in batch.audit_entries if e.seq > head.acked_seq]
    return chain_break(fresh, head.acked_seq, head.chain_hash or GENESIS_HASH)
