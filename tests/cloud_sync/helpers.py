"""Builders of records, audit chains and prepared batches for the sync tests."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from cloud_sync.audit_chain import GENESIS_HASH, entry_hash, time_text
from cloud_sync.client import CentralClient, GapRefused
from cloud_sync.protocol import Batch, Record, Stream, split_batches
from cloud_sync.server.batches import prepare_batch
from cloud_sync.server.store.model import PreparedBatch

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
BOOT = "5d6f0c44-0b36-4c55-9a43-0c1f3a9a1b22"


def record(
    site_id: str,
    stream: Stream,
    seq: int,
    payload: dict[str, Any] | None = None,
    *,
    occurred_at: datetime | None = None,
) -> Record:
    """A valid record; attendance records name person ``p{seq % 3}``."""
    if payload is None:
        payload = {"person_id": f"p{seq % 3}"} if stream is Stream.ATTENDANCE else {}
    return Record(
        site_id=site_id,
        stream=stream,
        seq=seq,
        id=uuid.uuid5(uuid.NAMESPACE_URL, f"{site_id}/{stream}/{seq}"),
        type="mark.check_in" if stream is Stream.ATTENDANCE else f"{stream}.recorded",
        occurred_at=occurred_at or START + timedelta(minutes=seq),
        monotonic_ns=seq * 1_000_000,
        boot_id=BOOT,
        payload=payload,
    )


def records(site_id: str, stream: Stream, first: int, last: int) -> list[Record]:
    return [record(site_id, stream, seq) for seq in range(first, last + 1)]


def audit_entry(seq: int, prev_hash: str, action: str = "auth.login") -> dict[str, Any]:
    """A sealed audit entry as the site's chain holds it, in wire form."""
    fields: dict[str, Any] = {
        "seq": seq,
        "at": START + timedelta(seconds=seq),
        "actor": "account:ana",
        "actor_role": "admin",
        "action": action,
        "target": None,
        "source": "10.0.0.5",
        "outcome": "success",
        "details": {"n": seq, "note": "ü"},
        "prev_hash": prev_hash,
    }
    digest = entry_hash(**fields)
    return {**fields, "at": time_text(fields["at"]), "hash": digest}


def audit_chain(
    count: int,
    *,
    after_seq: int = 0,
    after_hash: str = GENESIS_HASH,
    action: str = "auth.login",
) -> list[dict[str, Any]]:
    """``count`` linked entries continuing ``(after_seq, after_hash)``."""
    entries = []
    previous = after_hash
    for seq in range(after_seq + 1, after_seq + count + 1):
        entry = audit_entry(seq, previous, action)
        entries.append(entry)
        previous = entry["hash"]
    return entries


def audit_records(site_id: str, entries: list[dict[str, Any]]) -> list[Record]:
    return [record(site_id, Stream.AUDIT, e["seq"], e) for e in entries]


def wire(
    site_id: str, stream: Stream, items: list[Record], site_head: int | None = None
) -> dict[str, Any]:
    """The JSON document a site would send for ``items``."""
    batch = Batch(
        site_id=site_id,
        stream=stream,
        sent_at=datetime.now(UTC),
        site_head=site_head if site_head is not None else items[-1].seq,
        records=items,
    )
    return batch.model_dump(mode="json")


async def deliver(
    client: CentralClient,
    site_id: str,
    stream: Stream,
    items: list[Record],
    *,
    max_records: int,
    site_head: int,
    on_acked: Callable[[int], None] | None = None,
    pause_s: float = 0.0,
) -> int:
    """Send ``items`` in batches until all are acknowledged; return the last seq.

    On a gap the sender resends from the seq the server expects, so senders
    racing on one stream converge. ``on_acked`` hears each new high-water
    mark; ``pause_s`` bounds a random pause after each acknowledgement.
    """
    batches = list(split_batches(items, max_records=max_records))
    acked = 0
    while acked < len(items):
        batch = next(b for b in batches if b[0].seq <= acked + 1 <= b[-1].seq)
        try:
            ack = await client.send_batch(site_id, stream, batch, site_head)
        except GapRefused as gap:
            acked = gap.expected_seq - 1
        else:
            acked = ack.acked_seq
            if pause_s:
                await asyncio.sleep(random.random() * pause_s)
        if on_acked is not None:
            on_acked(acked)
    return acked


def prepared(
    site_id: str,
    stream: Stream,
    items: list[Record] | list[dict[str, Any]],
    *,
    key: str | None = None,
    site_head: int | None = None,
) -> PreparedBatch:
    """``items`` checked by the server's batch rules, ready for a store."""
    raw = [i.model_dump(mode="json") if isinstance(i, Record) else i for i in items]
    seqs = [int(r["seq"]) for r in raw]
    document = {
        "protocol_version": 1,
        "site_id": site_id,
        "stream": stream.value,
        "sent_at": time_text(datetime.now(UTC)),
        "site_head": site_head if site_head is not None else seqs[-1],
        "records": raw,
    }
    received = prepare_batch(
        site_id,
        stream,
        key or f"k-{stream}-{seqs[0]}-{seqs[-1]}",
        document,
        max_records=1000,
        received_at=datetime.now(UTC),
    )
    return received.prepared
