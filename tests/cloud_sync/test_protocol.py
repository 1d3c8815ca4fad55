"""Shapes and helpers of the wire protocol both ends share."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from cloud_sync.protocol import (
    MAX_BATCH_BYTES,
    Batch,
    Record,
    Stream,
    encode_batch,
    idempotency_key,
    record_size,
    split_batches,
)
from tests.cloud_sync.helpers import record, records

SITE = "site-a"


def test_split_honours_the_record_limit() -> None:
    batches = list(split_batches(records(SITE, Stream.EVENTS, 1, 1201)))

    assert [len(b) for b in batches] == [500, 500, 201]
    assert [r.seq for b in batches for r in b] == list(range(1, 1202))


def test_split_honours_the_byte_limit() -> None:
    big = [record(SITE, Stream.EVENTS, n, {"blob": "x" * 10_000}) for n in range(1, 61)]

    batches = list(split_batches(big))

    assert len(batches) > 1
    for batch in batches:
        body = Batch(
            site_id=SITE,
            stream=Stream.EVENTS,
            sent_at=datetime.now(UTC),
            site_head=60,
            records=batch,
        ).model_dump_json()
        assert len(body.encode()) <= MAX_BATCH_BYTES


def test_an_oversized_record_travels_alone() -> None:
    huge = record(SITE, Stream.EVENTS, 2, {"blob": "x" * 300_000})
    items = [record(SITE, Stream.EVENTS, 1), huge, record(SITE, Stream.EVENTS, 3)]

    batches = list(split_batches(items))

    assert [[r.seq for r in b] for b in batches] == [[1], [2], [3]]
    assert record_size(huge) > MAX_BATCH_BYTES


def test_idempotency_key_depends_on_site_stream_and_range_only() -> None:
    key = idempotency_key(SITE, Stream.EVENTS, 1, 10)

    assert key == idempotency_key(SITE, "events", 1, 10)
    assert (
        len(
            {
                key,
                idempotency_key("site-b", Stream.EVENTS, 1, 10),
                idempotency_key(SITE, Stream.AUDIT, 1, 10),
                idempotency_key(SITE, Stream.EVENTS, 1, 11),
            }
        )
        == 4
    )


def test_batch_body_is_gzip_json_and_stable() -> None:
    batch = Batch(
        site_id=SITE,
        stream=Stream.EVENTS,
        sent_at=datetime(2026, 3, 2, tzinfo=UTC),
        site_head=3,
        records=records(SITE, Stream.EVENTS, 1, 3),
    )

    body = encode_batch(batch)

    assert body == encode_batch(batch)
    assert json.loads(gzip.decompress(body))["records"][2]["seq"] == 3


@pytest.mark.parametrize(
    "items",
    [
        [record(SITE, Stream.EVENTS, 1), record(SITE, Stream.EVENTS, 3)],
        [record(SITE, Stream.EVENTS, 2), record(SITE, Stream.EVENTS, 1)],
        [record("site-b", Stream.EVENTS, 1)],
        [record(SITE, Stream.AUDIT, 1)],
        [],
    ],
    ids=["gap", "reversed", "other-site", "other-stream", "empty"],
)
def test_a_batch_holds_consecutive_records_of_its_stream(items: list[Record]) -> None:
    with pytest.raises(ValidationError):
        Batch(
            site_id=SITE,
            stream=Stream.EVENTS,
            sent_at=datetime.now(UTC),
            site_head=5,
            records=items,
        )


def test_seq_must_be_an_integer_not_text() -> None:
    raw = record(SITE, Stream.EVENTS, 1).model_dump(mode="json")
    raw["seq"] = "1"

    with pytest.raises(ValidationError):
        Record.model_validate(raw)
