"""Sync protocol: the wire format that sites and the central server share.

A site ships each stream as numbered records in batches; the server stores
each (site, stream, seq) once and answers with how far it holds the stream.
PROTOCOL.md beside this module describes the exchange in full; this module
holds its shapes (pydantic models), limits and the few pure helpers both ends
need (idempotency key, batch encoding, splitting into batches).
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterable, Iterator
from enum import StrEnum
from typing import Annotated, Any, Final
from uuid import UUID

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    model_validator,
)

from cloud_sync.audit_chain import recomputed_hash

__all__ = [
    "BATCH_CONTENT_TYPE",
    "MAX_BATCH_BYTES",
    "MAX_BATCH_RECORDS",
    "PROBLEM_CONTENT_TYPE",
    "PROTOCOL_VERSION",
    "AuditEntry",
    "Batch",
    "BatchAck",
    "Problem",
    "ProblemType",
    "Quarantined",
    "Record",
    "Stream",
    "batch_path",
    "encode_batch",
    "idempotency_key",
    "problem_type",
    "record_size",
    "split_batches",
]

PROTOCOL_VERSION: Final = 1

# What one batch may hold by default: records, and bytes of uncompressed
# record JSON. The server's own limits (its settings) are at least these.
MAX_BATCH_RECORDS: Final = 500
MAX_BATCH_BYTES: Final = 256 * 1024

BATCH_CONTENT_TYPE: Final = "application/json"
# RFC 9457 section 3: the media type of a problem details object.
PROBLEM_CONTENT_TYPE: Final = "application/problem+json"
_PROBLEM_PREFIX: Final = "urn:cloud-sync:problem:"

# Room for the batch envelope around the records when sizing a batch.
_ENVELOPE_BYTES: Final = 512

SiteId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
RecordType = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_.:/-]{0,127}$")
]
Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Seq = Annotated[StrictInt, Field(ge=1)]


class Stream(StrEnum):
    """The streams a site ships; each has its own gapless ``seq``."""

    ATTENDANCE = "attendance"
    DECISIONS = "decisions"
    AUDIT = "audit"
    EVENTS = "events"


class ProblemType(StrEnum):
    """Slugs of the problem types the server answers with; see :func:`problem_type`."""

    INVALID_REQUEST = "invalid-request"
    INVALID_JSON = "invalid-json"
    INVALID_BATCH = "invalid-batch"
    INVALID_AUDIT_RECORD = "invalid-audit-record"
    UNSUPPORTED_PROTOCOL_VERSION = "unsupported-protocol-version"
    MISSING_IDEMPOTENCY_KEY = "missing-idempotency-key"
    IDEMPOTENCY_CONFLICT = "idempotency-conflict"
    SEQUENCE_GAP = "sequence-gap"
    AUDIT_CHAIN_BROKEN = "audit-chain-broken"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not-found"
    METHOD_NOT_ALLOWED = "method-not-allowed"
    BODY_TOO_LARGE = "body-too-large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported-media-type"
    CONFLICT = "conflict"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"


class _WireModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Record(_WireModel):
    """One record of a stream as the site committed it.

    ``occurred_at`` is the site's wall clock when the record was written;
    ``monotonic_ns`` and ``boot_id`` place it on the site's monotonic clock,
    which stays steady when the wall clock is reset (within one boot).
    """

    site_id: SiteId
    stream: Stream
    seq: Seq
    id: UUID
    type: RecordType
    occurred_at: AwareDatetime
    monotonic_ns: Annotated[StrictInt, Field(ge=0)]
    boot_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    payload: dict[str, Any]


class AuditEntry(_WireModel):
    """The payload of an ``audit`` record: one link of the site's hash chain."""

    seq: Seq
    at: AwareDatetime
    actor: str
    actor_role: str | None
    action: str
    target: str | None
    source: str | None
    outcome: str
    details: dict[str, Any]
    prev_hash: Sha256Hex
    hash: Sha256Hex

    def hash_matches(self) -> bool:
        """Whether ``hash`` recomputes from the other fields."""
        return self.hash == recomputed_hash(self)


class Batch(_WireModel):
    """What a site POSTs: consecutive records of one stream, oldest first.

    ``site_head`` is the highest ``seq`` the site has committed on this stream
    when it sends, so the office sees how far behind it is.
    """

    protocol_version: StrictInt = PROTOCOL_VERSION
    site_id: SiteId
    stream: Stream
    sent_at: AwareDatetime
    site_head: Annotated[StrictInt, Field(ge=0)]
    records: Annotated[list[Record], Field(min_length=1)]

    @model_validator(mode="after")
    def _check_records(self) -> Batch:
        first = self.records[0].seq
        for offset, record in enumerate(self.records):
            if record.seq != first + offset:
                raise ValueError("records must have consecutive seq, oldest first")
            if record.site_id != self.site_id or record.stream != self.stream:
                raise ValueError(f"record {record.seq} is not of this site/stream")
        if self.site_head < self.last_seq:
            raise ValueError("site_head is below the last record's seq")
        return self

    @property
    def first_seq(self) -> int:
        return self.records[0].seq

    @property
    def last_seq(self) -> int:
        return self.records[-1].seq


class Quarantined(_WireModel):
    """A record the server set aside for good, and why; it counts as acknowledged."""

    seq: Seq
    reason: str


class BatchAck(_WireModel):
    """The answer to an accepted batch.

    ``acked_seq`` is the server's high-water mark of the stream: every record
    up to it is stored (or quarantined) and need never be sent again.
    ``clock_skew_s`` (``sent_at`` minus the server's time of receipt) is only
    present when it exceeds the server's tolerance.
    """

    protocol_version: StrictInt = PROTOCOL_VERSION
    site_id: SiteId
    stream: Stream
    acked_seq: Annotated[StrictInt, Field(ge=0)]
    quarantined: list[Quarantined] = []
    server_time: AwareDatetime
    clock_skew_s: float | None = None


class Problem(BaseModel):
    """An RFC 9457 problem details object, with this protocol's extensions.

    ``expected_seq`` comes with ``sequence-gap``; ``request_id`` always.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    request_id: str | None = None
    expected_seq: int | None = None

    @property
    def slug(self) -> str | None:
        """The slug of a ``urn:cloud-sync:problem:`` type, else ``None``."""
        if not self.type.startswith(_PROBLEM_PREFIX):
            return None
        return self.type.removeprefix(_PROBLEM_PREFIX)


def problem_type(slug: ProblemType | str) -> str:
    """The problem ``type`` URI of ``slug``."""
    return f"{_PROBLEM_PREFIX}{slug}"


def batch_path(site_id: str, stream: Stream | str) -> str:
    """The path a site POSTs a batch of ``stream`` to."""
    return f"/v1/sites/{site_id}/streams/{stream}/batches"


def idempotency_key(site_id: str, stream: Stream | str, first: int, last: int) -> str:
    """The ``Idempotency-Key`` of the batch of ``stream`` from ``first`` to ``last``.

    A resent batch of the same records gets the same key, whatever its
    ``sent_at``; the site id is hashed so the key is safe in any header.
    """
    digest = hashlib.sha256(f"{site_id}\n{stream}".encode()).hexdigest()[:16]
    return f"v{PROTOCOL_VERSION}-{digest}-{stream}-{first}-{last}"


def record_size(record: Record) -> int:
    """Bytes of ``record`` as JSON inside a batch."""
    return len(record.model_dump_json().encode("utf-8"))


def split_batches(
    records: Iterable[Record],
    *,
    max_records: int = MAX_BATCH_RECORDS,
    max_bytes: int = MAX_BATCH_BYTES,
) -> Iterator[list[Record]]:
    """Cut ``records`` (in order) into batches within both limits.

    ``max_bytes`` counts uncompressed JSON, envelope included. A record that
    alone exceeds it still travels, alone in its batch, since holding it back
    would stall the stream; the server refuses it with 413 when it is beyond
    the server's own limit.
    """
    if max_records < 1:
        raise ValueError("max_records must be at least 1")
    batch: list[Record] = []
    size = _ENVELOPE_BYTES
    for record in records:
        # One more for the comma between records.
        cost = record_size(record) + 1
        if batch and (len(batch) >= max_records or size + cost > max_bytes):
            yield batch
            batch, size = [], _ENVELOPE_BYTES
        batch.append(record)
        size += cost
    if batch:
        yield batch


def encode_batch(batch: Batch) -> bytes:
    """The request body of ``batch``: its JSON, gzip-compressed."""
    # mtime=0 keeps the body of a resent batch byte-identical. Level 6 (zlib's
    # default) compresses record JSON nearly as well as 9 for a third of the
    # CPU, which a small appliance catching up a backlog notices.
    body = batch.model_dump_json().encode("utf-8")
    return gzip.compress(body, compresslevel=6, mtime=0)
