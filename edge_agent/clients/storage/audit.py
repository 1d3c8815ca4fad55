"""Storage client: the SQL of the audit hash chain (``audit_log``), append and read.

The repository keeps the chain's shape in storage: each new entry takes the
next ``seq`` and the previous entry's hash, read and written inside one
``BEGIN IMMEDIATE`` transaction. SQLite grants that lock to one writer across
every process on the file, so the daemon and a CLI command appending at the
same moment still get distinct, contiguous sequence numbers.

How an entry is hashed is a rule of :mod:`edge_agent.services.audit`; the
caller hands it in as a ``Seal`` so this module holds no rule of its own.

The append opens a transaction, or joins the one the caller opened with
:meth:`AuditRepository.atomic`, so an act stored by another repository and
its audit entry can be one commit.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiosqlite

from cloud_sync.audit_chain import GENESIS_HASH, canonical_json, wire_entry
from edge_agent.clients.storage.database import Database
from edge_agent.clients.storage.outbox import OutboxRecord, boot_id
from edge_agent.clients.storage.rows import Filters
from edge_agent.clock import from_text, to_text
from edge_agent.errors import EdgeError
from edge_agent.models import AuditEntry

AUDIT_STREAM = "audit"
# Namespace of the ids of audit sync records (uuid5 of seq and hash).
_AUDIT_IDS = uuid.UUID("5d0c1c0e-7a43-4e0b-9b53-3f1d8f2a6c41")

# Given the next seq and the hash it must point to, build the complete entry.
Seal = Callable[[int, str], AuditEntry]

_CHAIN_END = "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1"
_INSERT_ENTRY = """
INSERT INTO audit_log (seq, at, actor, actor_role, action, target, source,
                       outcome, details, prev_hash, hash, monotonic_ns, boot_id)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
_SELECT_ENTRIES = "SELECT * FROM audit_log"
_HEAD = "SELECT COALESCE(MAX(seq), 0) FROM audit_log"
_CHAIN_BATCH = "SELECT * FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?"


class UnreadableAuditEntry(EdgeError):
    """A stored entry whose columns no longer parse: the row was altered."""

    slug = "unreadable-audit-entry"
    title = "Unreadable audit entry"

    def __init__(self, seq: int, problem: str) -> None:
        super().__init__(f"audit entry {seq} cannot be read: {problem}", seq=seq)
        self.seq = seq
        self.problem = problem


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which entries a listing wants; ``None`` matches anything.

    ``since`` is inclusive and ``until`` exclusive, both compared with ``at``.
    """

    actor: str | None = None
    action: str | None = None
    target: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None


class AuditRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def atomic(self) -> AbstractAsyncContextManager[object]:
        """One write transaction that repositories called inside it join, so an
        act and its entry are committed together or not at all."""
        return self._db.transaction()

    async def append(self, seal: Seal) -> AuditEntry:
        """Link one entry to the end of the chain and store it, in one transaction."""
        async with self._db.transaction() as conn:
            last_seq, last_hash = await _chain_end(conn)
            entry = seal(last_seq + 1, last_hash)
            await conn.execute(_INSERT_ENTRY, _row(entry))
        return entry

    async def page(
        self, filters: AuditFilter, *, after_seq: int = 0, limit: int = 100
    ) -> list[AuditEntry]:
        """Up to ``limit`` entries matching ``filters`` after ``after_seq``, by seq."""
        conditions = _conditions(filters, after_seq)
        sql = f"{_SELECT_ENTRIES}{conditions.where()} ORDER BY seq LIMIT ?"

        rows = await self._db.fetch_all(sql, (*conditions.params, limit))
        return [_entry(row) for row in rows]

    async def head(self) -> int:
        """The last entry's ``seq``; 0 when the log is empty."""
        row = await self._db.fetch_one(_HEAD)
        return int(row[0]) if row else 0

    async def sync_records(self, after_seq: int, limit: int) -> list[OutboxRecord]:
        """Entries after ``after_seq`` as records of the ``audit`` sync stream.

        The record's seq is the entry's, and its id is derived from the seq and
        hash, so a resent entry is the very same record.
        """
        rows = await self._db.fetch_all(_CHAIN_BATCH, (after_seq, limit))
        return [_sync_record(row) for row in rows]

    async def iter_chain(self, batch: int = 500) -> AsyncIterator[AuditEntry]:
        """Every entry by seq, read ``batch`` rows at a time so memory stays bounded.

        Each batch is a read of its own; entries appended meanwhile only extend
        the chain and are read by a later batch.
        """
        after = 0
        while True:
            rows = await self._db.fetch_all(_CHAIN_BATCH, (after, batch))
            for row in rows:
                yield _entry(row)

            if len(rows) < batch:
                return
            after = rows[-1]["seq"]


async def _chain_end(conn: aiosqlite.Connection) -> tuple[int, str]:
    async with conn.execute(_CHAIN_END) as cursor:
        row = await cursor.fetchone()
    if row is None:
        return 0, GENESIS_HASH
    return int(row["seq"]), str(row["hash"])


def _conditions(filters: AuditFilter, after_seq: int) -> Filters:
    conditions = Filters("seq > ?", params=(after_seq,))
    conditions.equal("actor", filters.actor)
    conditions.equal("action", filters.action)
    conditions.equal("target", filters.target)
    conditions.equal("outcome", filters.outcome)
    conditions.within("at", filters.since, filters.until)
    return conditions


def _row(entry: AuditEntry) -> tuple[Any, ...]:
    return (
        entry.seq,
        to_text(entry.at),
        entry.actor,
        entry.actor_role,
        entry.action,
        entry.target,
        entry.source,
        entry.outcome,
        canonical_json(entry.details),
        entry.prev_hash,
        entry.hash,
        # Where on this boot's monotonic clock the entry was written, for the
        # central office to place it after a wall-clock reset.
        time.monotonic_ns(),
        boot_id(),
    )


def _sync_record(row: sqlite3.Row) -> OutboxRecord:
    entry = _entry(row)
    payload = wire_entry(entry)
    return OutboxRecord(
        stream=AUDIT_STREAM,
        seq=entry.seq,
        id=str(uuid.uuid5(_AUDIT_IDS, f"{entry.seq}:{entry.hash}")),
        type=f"audit.{entry.action}",
        occurred_at=entry.at,
        payload=payload,
        monotonic_ns=int(row["monotonic_ns"]),
        boot_id=str(row["boot_id"]),
    )


def _entry(row: sqlite3.Row) -> AuditEntry:
    seq = int(row["seq"])
    return AuditEntry(
        seq=seq,
        at=_stored_time(seq, row["at"]),
        actor=row["actor"],
        actor_role=row["actor_role"],
        action=row["action"],
        target=row["target"],
        source=row["source"],
        outcome=row["outcome"],
        details=_stored_details(seq, row["details"]),
        prev_hash=row["prev_hash"],
        hash=row["hash"],
    )


def _stored_time(seq: int, text: object) -> datetime:
    try:
        return from_text(str(text))
    except ValueError as exc:
        raise UnreadableAuditEntry(seq, "'at' is not an RFC 3339 time") from exc


def _stored_details(seq: int, text: object) -> dict[str, Any]:
    try:
        details = json.loads(str(text))
    except json.JSONDecodeError as exc:
        raise UnreadableAuditEntry(seq, "'details' is not JSON") from exc
    if not isinstance(details, dict):
        raise UnreadableAuditEntry(seq, "'details' is not a JSON object")
    return details
