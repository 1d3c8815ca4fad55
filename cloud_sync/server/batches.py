"""Batch checking: turn a received JSON document into a :class:`PreparedBatch`.

What makes the whole batch unusable (no place for it in the stream, wrong
site or stream, seq not consecutive, a bad audit entry) raises; a record that
is only bad in itself is set aside with its reason, so the stream goes on.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
)

from cloud_sync.audit_chain import canonical_json
from cloud_sync.protocol import PROTOCOL_VERSION, AuditEntry, Record, Stream
from cloud_sync.server.errors import (
    BodyTooLarge,
    InvalidAuditRecord,
    InvalidBatch,
    UnsupportedVersion,
)
from cloud_sync.server.store.model import PreparedBatch, QuarantineRow, StoredRecord

# How many validation errors a reason or a problem detail spells out.
_ERRORS_SHOWN = 3


class _Envelope(BaseModel):
    """The batch around its records; records are checked one by one later."""

    model_config = ConfigDict(extra="forbid", strict=True)

    protocol_version: StrictInt
    site_id: StrictStr
    stream: StrictStr
    sent_at: AwareDatetime
    site_head: Annotated[StrictInt, Field(ge=0)]
    records: Annotated[list[Any], Field(min_length=1)]


class _Placed(BaseModel):
    """Just enough of a record to know its place in the stream."""

    seq: Annotated[StrictInt, Field(ge=1)]


@dataclass(frozen=True, slots=True)
class ReceivedBatch:
    """A checked batch with the site's clock reading, before it is stored."""

    sent_at: datetime
    prepared: PreparedBatch


def prepare_batch(
    site_id: str,
    stream: Stream,
    key: str,
    document: Any,
    *,
    max_records: int,
    received_at: datetime,
) -> ReceivedBatch:
    """Check ``document`` as a batch of ``stream`` from ``site_id``."""
    envelope = _envelope(document, site_id, stream, max_records)
    seqs = _consecutive_seqs(envelope.records)
    if envelope.site_head < seqs[-1]:
        raise InvalidBatch("site_head is below the last record's seq")

    # Each record's canonical text is made once: it is what is checked, what
    # a quarantined record is kept as, and what the batch digest covers.
    texts = [canonical_json(raw) for raw in envelope.records]
    kept, quarantined, entries = _sorted_out(seqs, texts, site_id, stream)

    prepared = PreparedBatch(
        site_id=site_id,
        stream=stream,
        key=key,
        digest=_digest(texts),
        first_seq=seqs[0],
        last_seq=seqs[-1],
        site_head=envelope.site_head,
        received_at=received_at,
        records=tuple(kept),
        quarantined=tuple(quarantined),
        audit_entries=tuple(entries),
    )
    return ReceivedBatch(sent_at=envelope.sent_at, prepared=prepared)


def _envelope(
    document: Any, site_id: str, stream: Stream, max_records: int
) -> _Envelope:
    if isinstance(document, dict) and document.get("protocol_version") not in (
        None,
        PROTOCOL_VERSION,
    ):
        raise UnsupportedVersion(
            f"protocol_version {document.get('protocol_version')!r} is not "
            f"supported; this server speaks {PROTOCOL_VERSION}"
        )
    # The records are checked one by one later; the envelope is checked with
    # stand-ins for them, so a batch is not serialized once more just for it.
    records = document.get("records") if isinstance(document, dict) else None
    shallow = document
    if isinstance(records, list):
        shallow = {**document, "records": [None] * len(records)}
    try:
        envelope = _Envelope.model_validate_json(canonical_json(shallow))
    except ValidationError as exc:
        raise InvalidBatch(f"not a batch: {_summary(exc)}") from exc
    if isinstance(records, list):
        envelope = envelope.model_copy(update={"records": records})
    if envelope.site_id != site_id or envelope.stream != stream.value:
        raise InvalidBatch("the batch's site_id and stream must match its URL")
    if len(envelope.records) > max_records:
        raise BodyTooLarge(
            f"batch holds {len(envelope.records)} records; at most {max_records}"
        )
    return envelope


def _consecutive_seqs(records: list[Any]) -> list[int]:
    """The records' seq, which must count up by one from the first."""
    seqs: list[int] = []
    for index, raw in enumerate(records):
        if not isinstance(raw, dict):
            raise InvalidBatch(f"record {index} is not a JSON object")
        try:
            seqs.append(_Placed.model_validate({"seq": raw.get("seq")}).seq)
        except ValidationError as exc:
            raise InvalidBatch(f"record {index} has no usable seq") from exc
    for offset, seq in enumerate(seqs):
        if seq != seqs[0] + offset:
            raise InvalidBatch("records must have consecutive seq, oldest first")
    return seqs


def _sorted_out(
    seqs: list[int], texts: list[str], site_id: str, stream: Stream
) -> tuple[list[StoredRecord], list[QuarantineRow], list[AuditEntry]]:
    """The records to keep, those to set aside, and the audit entries carried."""
    kept: list[StoredRecord] = []
    quarantined: list[QuarantineRow] = []
    entries: list[AuditEntry] = []
    for seq, text in zip(seqs, texts, strict=True):
        record, reason = _checked(text, site_id, stream)
        entry = None
        if stream is Stream.AUDIT:
            entry = _audit_entry(seq, record, reason)
            entries.append(entry)
        if record is None or reason is not None:
            quarantined.append(QuarantineRow(seq, reason or "", text))
        else:
            kept.append(_stored(record, entry))
    return kept, quarantined, entries


def _checked(
    text: str, site_id: str, stream: Stream
) -> tuple[Record | None, str | None]:
    """The record, or why it is quarantined (the record is kept when it parsed)."""
    try:
        record = Record.model_validate_json(text, strict=True)
    except ValidationError as exc:
        return None, _summary(exc)
    if record.site_id != site_id:
        return record, f"site_id {record.site_id!r} is not this site"
    if record.stream is not stream:
        return record, f"stream {record.stream.value!r} is not this batch's stream"
    if stream is Stream.ATTENDANCE and not _person_of(record):
        return record, "attendance payload needs a non-empty string person_id"
    return record, None


def _audit_entry(seq: int, record: Record | None, reason: str | None) -> AuditEntry:
    """The audit entry the record carries; a bad one refuses the whole batch."""
    if record is None or reason is not None:
        raise InvalidAuditRecord(f"audit record {seq}: {reason}")
    try:
        entry = AuditEntry.model_validate_json(canonical_json(record.payload))
    except ValidationError as exc:
        raise InvalidAuditRecord(f"audit record {seq}: {_summary(exc)}") from exc
    if entry.seq != seq:
        raise InvalidAuditRecord(f"audit record {seq} carries entry {entry.seq}")
    return entry


def _stored(record: Record, entry: AuditEntry | None) -> StoredRecord:
    return StoredRecord(
        seq=record.seq,
        id=str(record.id),
        type=record.type,
        occurred_at=record.occurred_at,
        monotonic_ns=record.monotonic_ns,
        boot_id=record.boot_id,
        payload=record.payload,
        day=_day_of(record),
        person_id=_person_of(record),
        chain_hash=entry.hash if entry is not None else None,
    )


def _person_of(record: Record) -> str | None:
    person = record.payload.get("person_id")
    return person if isinstance(person, str) and person else None


def _day_of(record: Record) -> str:
    """The site-local day the payload names (``local_day``), else the UTC date.

    The office does not know a site's time zone, so a record without
    ``local_day`` is filed under its UTC date, which near midnight is not the
    day the site saw.
    """
    local_day = record.payload.get("local_day")
    if isinstance(local_day, str):
        try:
            return date.fromisoformat(local_day).isoformat()
        except ValueError:
            pass
    return record.occurred_at.astimezone(UTC).date().isoformat()


def _digest(texts: list[str]) -> str:
    """Digest of the records as received (``sent_at`` differs between resends):
    of their canonical JSON array, joined from each record's canonical text."""
    array = "[" + ",".join(texts) + "]"
    return hashlib.sha256(array.encode("utf-8")).hexdigest()


def _summary(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:_ERRORS_SHOWN]:
        where = ".".join(str(part) for part in error["loc"]) or "value"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)
