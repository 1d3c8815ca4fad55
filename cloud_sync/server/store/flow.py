"""The batch flow both stores run inside their write transaction."""

from __future__ import annotations

from dataclasses import dataclass

from cloud_sync.audit_chain import ChainBreak
from cloud_sync.protocol import Quarantined, Stream
from cloud_sync.server.errors import ChainBroken
from cloud_sync.server.rules import Plan, plan_batch
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

    def settled(self) -> BatchOutcome:
        """The outcome, once committed; raise :class:`ChainBroken` for a break."""
        if self.chain_break is not None:
            raise ChainBroken(self.chain_break.seq, self.chain_break.reason)
        return self.outcome


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

    set_aside = await _set_aside_before(txn, batch, head.acked_seq)
    # Records set aside before that pass their checks now: stored at last.
    revived = tuple(r for r in batch.records if r.seq in set_aside)
    await _write(txn, batch, plan, revived, new_key=known is None)

    # The plan's own quarantined records are all beyond the old head, so
    # they come after the ones still set aside from before.
    released = {r.seq for r in revived}
    quarantined = [q for seq, q in set_aside.items() if seq not in released]
    quarantined += [Quarantined(seq=q.seq, reason=q.reason) for q in plan.quarantined]
    return FlowResult(BatchOutcome(plan.acked_seq, quarantined))


async def _write(
    txn: BatchTransaction,
    batch: PreparedBatch,
    plan: Plan,
    revived: tuple[StoredRecord, ...],
    *,
    new_key: bool,
) -> None:
    """Store the plan's records and the revived ones, then advance the head."""
    if plan.records or revived:
        await txn.insert_records(batch, (*plan.records, *revived))
    if revived:
        seqs = [r.seq for r in revived]
        await txn.release_quarantine(batch.site_id, batch.stream, seqs)
    if plan.quarantined:
        await txn.insert_quarantine(batch, plan.quarantined)
    await txn.advance_head(batch, plan.acked_seq, plan.chain_hash)
    # Keys are kept for good: nothing prunes idempotency_keys yet, so the
    # table grows by one row per accepted batch.
    if new_key:
        await txn.save_key(batch)


async def _set_aside_before(
    txn: BatchTransaction, batch: PreparedBatch, acked_seq: int
) -> dict[int, Quarantined]:
    """What this server holds in quarantine of the batch's range, by seq.

    A site re-drives such records after the server learned to take them. Only
    seqs up to ``acked_seq`` can be there, and never audit ones (a bad audit
    record refuses its whole batch), so a batch of new records costs no query.
    """
    if batch.first_seq > acked_seq or batch.stream is Stream.AUDIT:
        return {}
    last = min(batch.last_seq, acked_seq)
    held = await txn.quarantined_between(
        batch.site_id, batch.stream, batch.first_seq, last
    )
    return {q.seq: q for q in held}
