"""Storage client: where each sync stream's records are read on this site.

The ``attendance``, ``events`` and ``decisions`` streams are kept in the
outbox; the ``audit`` stream is the hash chain itself, which is never pruned,
so the central server can be sent any part of it again.
"""

from __future__ import annotations

from typing import Protocol

from edge_agent.clients.storage.audit import AuditRepository
from edge_agent.clients.storage.outbox import OutboxRecord, OutboxRepository


class StreamSource(Protocol):
    """Where a stream's records are read from on this site."""

    async def records(self, after_seq: int, limit: int) -> list[OutboxRecord]: ...

    async def head(self) -> int: ...


class OutboxSource:
    """A stream kept in the outbox table (attendance, events, decisions)."""

    def __init__(self, outbox: OutboxRepository, stream: str) -> None:
        self._outbox = outbox
        self._stream = stream

    async def records(self, after_seq: int, limit: int) -> list[OutboxRecord]:
        return await self._outbox.after(self._stream, after_seq, limit)

    async def head(self) -> int:
        return await self._outbox.head(self._stream)


class AuditSource:
    """The audit stream, read from the hash chain itself (never pruned)."""

    def __init__(self, audit: AuditRepository) -> None:
        self._audit = audit

    async def records(self, after_seq: int, limit: int) -> list[OutboxRecord]:
        return await self._audit.sync_records(after_seq, limit)

    async def head(self) -> int:
        return await self._audit.head()
