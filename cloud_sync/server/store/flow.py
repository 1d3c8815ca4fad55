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

    await txn.insert_records(batch, plan.records)
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
