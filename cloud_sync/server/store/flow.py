"""The batch flow both stores run inside their write transaction."""

from __future__ import annotations

from dataclasses import dataclass

from cloud_sync.audit_chain import ChainBreak
from cloud_sync.protocol import Stream
from cloud_sync.server.rules import plan_batch
from cloud_sync.server.store.model import (
    BatchOutcome,
    BatchTransaction,
    PreparedBatch,
    StoredRecord,
)


@dataclass(frozen=True, slots=True)
class FlowResult:
    """What to commit and answer; ``chain_break`` set means refuse after commit."""

    outcome: BatchOutcome
    chain_break: ChainBreak | None = None


async def run_batch(txn: BatchTransaction, batch: PreparedBatch) -> FlowResult:
    """Apply ``batch`` through ``txn``: lock, decide, write, report.

    Refusals that change nothing raise, and the caller rolls back; a broken
    chain is recorded and returned, so the caller commits that record.
    """
    head = await txn.lock_head(batch.site_id, batch.stream)
    known = await txn.stored_digest(batch.site_id, batch.stream, batch.key)
    held: dict[int, str] = {}
    if batch.stream is Stream.AUDIT and batch.first_seq <= head.acked_seq:
        last_held = min(batch.last_seq, head.acked_seq)
        held = await txn.held_hashes(batch.site_id, batch.first_seq, last_held)

    plan = plan_batch(batch, head, known, held)
    if plan.chain_break is not None:
        problem = f"seq {plan.chain_break.seq}: {plan.chain_break.reason}"
        await txn.mark_chain_broken(batch, problem)
        return FlowResult(BatchOutcome(head.acked_seq, []), plan.chain_break)

    revived = await _revived(txn, batch, head.acked_seq)
    await txn.insert_records(batch, (*plan.records, *revived))
    await txn.release_quarantine(batch.site_id, batch.stream, [r.seq for r in revived])
    await txn.insert_quarantine(batch, plan.quarantined)
    await txn.advance_head(batch, plan.acked_seq, plan.chain_hash)
    # Keys are kept for good: nothing prunes idempotency_keys yet, so the
    # table grows by one row per accepted batch.
    if known is None:
        await txn.save_key(batch)

    quarantined = await txn.quarantined_between(
        batch.site_id, batch.stream, batch.first_seq, batch.last_seq
    )
    return FlowResult(BatchOutcome(plan.acked_seq, quarantined))


async def _revived(
    txn: BatchTransaction, batch: PreparedBatch, acked_seq: int
) -> tuple[StoredRecord, ...]:
    """Records this server set aside before that pass its checks now (a site
    re-drives them after the server learned to take them): stored at last."""
    if batch.first_seq > acked_seq or batch.stream is Stream.AUDIT:
        return ()
    last = min(batch.last_seq, acked_seq)
    held = await txn.quarantined_between(
        batch.site_id, batch.stream, batch.first_seq, last
    )
    waiting = {q.seq for q in held}
    return tuple(r for r in batch.records if r.seq in waiting)
