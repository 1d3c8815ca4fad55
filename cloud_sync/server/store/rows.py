"""Store helpers both databases share: row mapping and the attendance query.

The two stores differ in how they write placeholders (``?`` or ``$n``) and
times (RFC 3339 text or ``TIMESTAMPTZ``), so each passes its own form of
both; the columns and the rules are the same.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from cloud_sync.audit_chain import canonical_json
from cloud_sync.protocol import Stream
from cloud_sync.server.store.model import (
    AttendanceQuery,
    AttendanceRow,
    ChainState,
    PreparedBatch,
    Site,
    StoredRecord,
    StreamHead,
)

# A stored time, as the driver returns it, read back as a datetime.
ReadTime = Callable[[Any], datetime]
# A datetime in the form the database stores.
WriteTime = Callable[[datetime], Any]
# The placeholder of the nth parameter (from 1) of a statement.
Placeholder = Callable[[int], str]

# Every table keyed by site; ``sites`` comes last, so its delete count says
# whether the site existed.
SITE_TABLES = ("stream_heads", "records", "quarantine", "idempotency_keys", "sites")
_ATTENDANCE = """
SELECT site_id, seq, id, type, occurred_at, day, person_id, payload FROM records
WHERE stream = 'attendance'
"""


def attendance_sql(
    query: AttendanceQuery, mark: Placeholder, write_time: WriteTime
) -> tuple[str, list[Any]]:
    """The statement and parameters of one attendance page, oldest first."""
    clauses: list[str] = []
    params: list[Any] = []
    for column, op, value in (
        ("site_id", "=", query.site_id),
        ("person_id", "=", query.person_id),
        ("day", ">=", query.day_from),
        ("day", "<=", query.day_to),
    ):
        if value is not None:
            params.append(value)
            clauses.append(f"{column} {op} {mark(len(params))}")
    if query.after is not None:
        after = query.after
        params += [write_time(after.occurred_at), after.site_id, after.seq]
        n = len(params)
        marks = ", ".join(mark(i) for i in (n - 2, n - 1, n))
        clauses.append(f"(occurred_at, site_id, seq) > ({marks})")

    params.append(query.limit)
    where = "".join(f" AND {clause}" for clause in clauses)
    order = f" ORDER BY occurred_at, site_id, seq LIMIT {mark(len(params))}"
    return _ATTENDANCE + where + order, params


def record_rows(
    batch: PreparedBatch, records: Sequence[StoredRecord], write_time: WriteTime
) -> list[tuple[Any, ...]]:
    """The values of each record's ``records`` row, in the order of its INSERT."""
    received = write_time(batch.received_at)
    return [
        (
            batch.site_id,
            batch.stream.value,
            record.seq,
            record.id,
            record.type,
            write_time(record.occurred_at),
            record.monotonic_ns,
            record.boot_id,
            canonical_json(record.payload),
            record.day,
            record.person_id,
            record.chain_hash,
            received,
        )
        for record in records
    ]


def site_of(row: Any, read_time: ReadTime) -> Site:
    skew = row["clock_skew_s"]
    return Site(
        site_id=str(row["site_id"]),
        name=str(row["name"]),
        created_at=read_time(row["created_at"]),
        last_contact_at=_optional_time(row["last_contact_at"], read_time),
        clock_skew_s=None if skew is None else float(skew),
    )


def head_of(row: Any, read_time: ReadTime) -> StreamHead:
    return StreamHead(
        site_id=str(row["site_id"]),
        stream=Stream(row["stream"]),
        acked_seq=int(row["acked_seq"]),
        site_head=int(row["site_head"]),
        updated_at=_optional_time(row["updated_at"], read_time),
        chain_hash=row["chain_hash"],
        chain_state=ChainState(row["chain_state"]),
        chain_problem=row["chain_problem"],
    )


def attendance_row_of(row: Any, read_time: ReadTime) -> AttendanceRow:
    return AttendanceRow(
        site_id=str(row["site_id"]),
        seq=int(row["seq"]),
        id=str(row["id"]),
        type=str(row["type"]),
        occurred_at=read_time(row["occurred_at"]),
        day=str(row["day"]),
        person_id=row["person_id"],
        payload=json.loads(row["payload"]),
    )


def _optional_time(value: Any, read_time: ReadTime) -> datetime | None:
    return None if value is None else read_time(value)
