"""Store contracts: the rows the central server keeps and the interface of a store.

Two implementations stand behind :class:`Store`: SQLite for one office
(``sqlite.py``) and PostgreSQL for several replicas (``postgres.py``). Both
run the same batch flow (``flow.py``) through a :class:`BatchTransaction`
and map rows with the same helpers (``rows.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from cloud_sync.protocol import AuditEntry, Quarantined, Stream


class ChainState(StrEnum):
    """Whether every audit batch of a site has continued the chain held here."""

    OK = "ok"
    BROKEN = "broken"


class SiteExists(Exception):
    """A site with this id is already registered."""


@dataclass(frozen=True, slots=True)
class Site:
    site_id: str
    name: str
    created_at: datetime
    last_contact_at: datetime | None = None
    clock_skew_s: float | None = None


@dataclass(frozen=True, slots=True)
class StreamHead:
    """How far the server holds one stream of one site.

    ``site_head`` is what the site last reported as its own head; for the
    audit stream ``chain_hash`` is the hash of entry ``acked_seq``.
    """

    site_id: str
    stream: Stream
    acked_seq: int = 0
    site_head: int = 0
    updated_at: datetime | None = None
    chain_hash: str | None = None
    chain_state: ChainState = ChainState.OK
    chain_problem: str | None = None

    @property
    def lag(self) -> int:
        return max(self.site_head - self.acked_seq, 0)


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """A record as kept: its fields plus what queries need (person, day, hash)."""

    seq: int
    id: str
    type: str
    occurred_at: datetime
    monotonic_ns: int
    boot_id: str
    payload: dict[str, Any]
    day: str
    person_id: str | None = None
    chain_hash: str | None = None


@dataclass(frozen=True, slots=True)
class QuarantineRow:
    seq: int
    reason: str
    raw: str


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    """A checked batch, ready to apply: records split into kept and quarantined."""

    site_id: str
    stream: Stream
    key: str
    digest: str
    first_seq: int
    last_seq: int
    site_head: int
    received_at: datetime
    records: tuple[StoredRecord, ...]
    quarantined: tuple[QuarantineRow, ...] = ()
    audit_entries: tuple[AuditEntry, ...] = ()


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    acked_seq: int
    quarantined: list[Quarantined]


@dataclass(frozen=True, slots=True)
class AttendanceCursor:
    """The sort key of the last row of a page: where the next page starts."""

    occurred_at: datetime
    site_id: str
    seq: int


@dataclass(frozen=True, slots=True)
class AttendanceQuery:
    """Filters of an attendance listing; days are ``YYYY-MM-DD``, inclusive."""

    site_id: str | None = None
    person_id: str | None = None
    day_from: str | None = None
    day_to: str | None = None
    after: AttendanceCursor | None = None
    limit: int = 100


@dataclass(frozen=True, slots=True)
class AttendanceRow:
    site_id: str
    seq: int
    id: str
    type: str
    occurred_at: datetime
    day: str
    person_id: str | None
    payload: dict[str, Any]

    @property
    def cursor(self) -> AttendanceCursor:
        return AttendanceCursor(self.occurred_at, self.site_id, self.seq)


class BatchTransaction(Protocol):
    """The steps of applying one batch, all inside one write transaction.

    The flow calls the insert and release steps only with rows to write.
    """

    async def lock_head(self, site_id: str, stream: Stream) -> StreamHead:
        """The stream's head row, created when missing, locked until commit."""
        ...

    async def stored_digest(
        self, site_id: str, stream: Stream, key: str
    ) -> str | None: ...

    async def held_hashes(self, site_id: str, first: int, last: int) -> dict[int, str]:
        """Hashes of the audit entries ``first``..``last`` held for the site."""
        ...

    async def insert_records(
        self, batch: PreparedBatch, records: Sequence[StoredRecord]
    ) -> None: ...

    async def insert_quarantine(
        self, batch: PreparedBatch, rows: Sequence[QuarantineRow]
    ) -> None: ...

    async def advance_head(
        self, batch: PreparedBatch, acked_seq: int, chain_hash: str | None
    ) -> None: ...

    async def mark_chain_broken(self, batch: PreparedBatch, problem: str) -> None: ...

    async def save_key(self, batch: PreparedBatch) -> None: ...

    async def release_quarantine(
        self, site_id: str, stream: Stream, seqs: Sequence[int]
    ) -> None: ...

    async def quarantined_between(
        self, site_id: str, stream: Stream, first: int, last: int
    ) -> list[Quarantined]: ...


class Store(Protocol):
    """Everything the central server keeps, behind async methods."""

    async def open(self) -> None:
        """Connect and bring the schema up to date."""
        ...

    async def close(self) -> None: ...

    async def add_site(
        self, site_id: str, name: str, token_hash: str, at: datetime
    ) -> Site:
        """Register a site; raise :class:`SiteExists` when the id is taken."""
        ...

    async def set_token(self, site_id: str, token_hash: str, at: datetime) -> bool:
        """Replace the site's token; ``False`` when the site is unknown."""
        ...

    async def remove_site(self, site_id: str) -> bool:
        """Forget the site and everything it sent; ``False`` when unknown."""
        ...

    async def list_sites(self) -> list[Site]: ...

    async def site_for_token(self, token_hash: str) -> str | None: ...

    async def record_contact(
        self, site_id: str, at: datetime, clock_skew_s: float | None
    ) -> None: ...

    async def apply_batch(self, batch: PreparedBatch) -> BatchOutcome:
        """Store the new part of ``batch`` exactly once and advance the head.

        Raises ``SequenceGap``, ``IdempotencyConflict`` or ``ChainBroken``
        (after recording the broken chain) from ``cloud_sync.server.errors``.
        """
        ...

    async def stream_heads(self, site_id: str | None = None) -> list[StreamHead]: ...

    async def attendance(self, query: AttendanceQuery) -> list[AttendanceRow]: ...

    async def count_records(self, site_id: str, stream: Stream) -> int:
        """Records stored for the stream (quarantined ones not included)."""
        ...
