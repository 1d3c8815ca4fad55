"""Both stores, one suite: exactly-once storage, gaps, keys, quarantine, the chain."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cloud_sync.protocol import Stream
from cloud_sync.server.errors import ChainBroken, IdempotencyConflict, SequenceGap
from cloud_sync.server.office import AttendanceFilter, OfficeService
from cloud_sync.server.store.model import ChainState, SiteExists, Store, StreamHead
from cloud_sync.server.tokens import token_hash
from tests.cloud_sync.helpers import (
    audit_chain,
    audit_records,
    prepared,
    record,
    records,
)

SITE = "site-a"
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
async def site(store: Store) -> str:
    """Site ``site-a`` registered with token ``tok-a``."""
    await store.add_site(SITE, "Site A", token_hash("tok-a"), NOW)
    return SITE


async def _head(store: Store, stream: Stream) -> StreamHead:
    heads = await store.stream_heads(SITE)
    return next(h for h in heads if h.stream is stream)


async def test_new_batch_is_stored_and_acknowledged(store: Store, site: str) -> None:
    outcome = await store.apply_batch(
        prepared(site, Stream.EVENTS, records(site, Stream.EVENTS, 1, 5), site_head=9)
    )

    assert (outcome.acked_seq, outcome.quarantined) == (5, [])
    assert await store.count_records(site, Stream.EVENTS) == 5
    head = await _head(store, Stream.EVENTS)
    assert (head.acked_seq, head.site_head, head.lag) == (5, 9, 4)


async def test_replay_changes_nothing(store: Store, site: str) -> None:
    batch = prepared(site, Stream.EVENTS, records(site, Stream.EVENTS, 1, 5))
    await store.apply_batch(batch)

    again = await store.apply_batch(batch)
    older = await store.apply_batch(
        prepared(site, Stream.EVENTS, records(site, Stream.EVENTS, 2, 3))
    )

    assert again.acked_seq == older.acked_seq == 5
    assert await store.count_records(site, Stream.EVENTS) == 5


async def test_overlapping_batch_stores_only_its_new_part(
    store: Store, site: str
) -> None:
    await store.apply_batch(
        prepared(site, Stream.DECISIONS, records(site, Stream.DECISIONS, 1, 4))
    )

    outcome = await store.apply_batch(
        prepared(site, Stream.DECISIONS, records(site, Stream.DECISIONS, 3, 8))
    )

    assert outcome.acked_seq == 8
    assert await store.count_records(site, Stream.DECISIONS) == 8


async def test_gap_is_refused_with_the_expected_seq(store: Store, site: str) -> None:
    await store.apply_batch(
        prepared(site, Stream.EVENTS, records(site, Stream.EVENTS, 1, 3))
    )

    with pytest.raises(SequenceGap) as refused:
        await store.apply_batch(
            prepared(site, Stream.EVENTS, records(site, Stream.EVENTS, 5, 6))
        )

    assert refused.value.expected_seq == 4
    assert await store.count_records(site, Stream.EVENTS) == 3


async def test_out_of_order_batches_converge_once_resent(
    store: Store, site: str
) -> None:
    later = prepared(site, Stream.EVENTS, records(site, Stream.EVENTS, 4, 6))
    with pytest.raises(SequenceGap):
        await store.apply_batch(later)

    await store.apply_batch(
        prepared(site, Stream.EVENTS, records(site, Stream.EVENTS, 1, 3))
    )
    outcome = await store.apply_batch(later)

    assert outcome.acked_seq == 6
    assert await store.count_records(site, Stream.EVENTS) == 6


async def test_same_key_with_other_records_is_a_conflict(
    store: Store, site: str
) -> None:
    await store.apply_batch(
        prepared(site, Stream.EVENTS, records(site, Stream.EVENTS, 1, 2), key="k1")
    )
    other = [
        record(site, Stream.EVENTS, 1, {"x": 1}),
        record(site, Stream.EVENTS, 2),
    ]

    with pytest.raises(IdempotencyConflict):
        await store.apply_batch(prepared(site, Stream.EVENTS, other, key="k1"))


async def test_bad_records_are_quarantined_and_the_stream_goes_on(
    store: Store, site: str
) -> None:
    items = [r.model_dump(mode="json") for r in records(site, Stream.ATTENDANCE, 1, 4)]
    items[1]["payload"] = ["not", "an", "object"]
    items[2]["site_id"] = "site-b"
    items[3]["type"] = "no spaces allowed"

    outcome = await store.apply_batch(prepared(site, Stream.ATTENDANCE, items))
    replay = await store.apply_batch(prepared(site, Stream.ATTENDANCE, items))

    assert outcome.acked_seq == 4
    assert [q.seq for q in outcome.quarantined] == [2, 3, 4]
    assert "payload" in outcome.quarantined[0].reason
    assert "site-b" in outcome.quarantined[1].reason
    assert "type" in outcome.quarantined[2].reason
    assert replay.quarantined == outcome.quarantined
    assert await store.count_records(site, Stream.ATTENDANCE) == 1


async def test_a_set_aside_record_sent_again_in_good_shape_is_stored(
    store: Store, site: str
) -> None:
    items = [r.model_dump(mode="json") for r in records(site, Stream.ATTENDANCE, 1, 3)]
    bad = [dict(item) for item in items]
    bad[1]["payload"] = {"person_id": ""}
    first = await store.apply_batch(prepared(site, Stream.ATTENDANCE, bad))

    again = await store.apply_batch(prepared(site, Stream.ATTENDANCE, items[1:2]))

    assert [q.seq for q in first.quarantined] == [2]
    assert (again.acked_seq, again.quarantined) == (3, [])
    assert await store.count_records(site, Stream.ATTENDANCE) == 3


async def test_audit_chain_continues_across_batches(store: Store, site: str) -> None:
    chain = audit_chain(6)
    await store.apply_batch(
        prepared(site, Stream.AUDIT, audit_records(site, chain[:3]))
    )

    outcome = await store.apply_batch(
        prepared(site, Stream.AUDIT, audit_records(site, chain[2:]))
    )

    head = await _head(store, Stream.AUDIT)
    assert outcome.acked_seq == 6
    assert (head.chain_state, head.chain_hash) == (ChainState.OK, chain[-1]["hash"])


async def test_edited_entry_is_refused_and_flags_the_chain(
    store: Store, site: str
) -> None:
    chain = audit_chain(4)
    chain[2] = {**chain[2], "actor": "account:mallory"}

    with pytest.raises(ChainBroken) as refused:
        await store.apply_batch(
            prepared(site, Stream.AUDIT, audit_records(site, chain))
        )

    head = await _head(store, Stream.AUDIT)
    assert refused.value.seq == 3
    assert head.chain_state is ChainState.BROKEN
    assert head.acked_seq == 0
    assert await store.count_records(site, Stream.AUDIT) == 0


async def test_truncation_then_new_entries_is_detected(store: Store, site: str) -> None:
    chain = audit_chain(5)
    await store.apply_batch(prepared(site, Stream.AUDIT, audit_records(site, chain)))
    # The site loses entries 4-5 and writes new ones after entry 3.
    rewritten = audit_chain(3, after_seq=3, after_hash=chain[2]["hash"], action="x")

    with pytest.raises(ChainBroken):
        await store.apply_batch(
            prepared(site, Stream.AUDIT, audit_records(site, rewritten[2:]))
        )
    with pytest.raises(ChainBroken):
        await store.apply_batch(
            prepared(site, Stream.AUDIT, audit_records(site, rewritten))
        )

    head = await _head(store, Stream.AUDIT)
    assert (head.acked_seq, head.chain_state) == (5, ChainState.BROKEN)
    assert head.chain_problem is not None


async def test_bad_prev_hash_of_the_first_entry_is_refused(
    store: Store, site: str
) -> None:
    await store.apply_batch(
        prepared(site, Stream.AUDIT, audit_records(site, audit_chain(2)))
    )
    stranger = audit_chain(2, after_seq=2, after_hash="f" * 64)

    with pytest.raises(ChainBroken):
        await store.apply_batch(
            prepared(site, Stream.AUDIT, audit_records(site, stranger))
        )


async def test_sites_register_rotate_and_remove(store: Store, site: str) -> None:
    with pytest.raises(SiteExists):
        await store.add_site(site, "again", token_hash("other"), NOW)
    assert await store.site_for_token(token_hash("tok-a")) == site

    assert await store.set_token(site, token_hash("tok-b"), NOW)
    assert await store.site_for_token(token_hash("tok-a")) is None
    assert await store.site_for_token(token_hash("tok-b")) == site

    await store.apply_batch(
        prepared(site, Stream.EVENTS, records(site, Stream.EVENTS, 1, 2))
    )
    assert await store.remove_site(site)
    assert not await store.remove_site(site)
    assert await store.list_sites() == []
    assert await store.count_records(site, Stream.EVENTS) == 0


async def test_contact_and_skew_are_kept(store: Store, site: str) -> None:
    await store.record_contact(site, NOW, -321.5)

    [kept] = await store.list_sites()

    assert (kept.last_contact_at, kept.clock_skew_s) == (NOW, -321.5)


async def test_attendance_pages_follow_time_then_site_then_seq(
    store: Store, site: str
) -> None:
    await store.add_site("site-b", "Site B", token_hash("tok-b"), NOW)
    for site_id in (site, "site-b"):
        await store.apply_batch(
            prepared(
                site_id, Stream.ATTENDANCE, records(site_id, Stream.ATTENDANCE, 1, 7)
            )
        )
    office = OfficeService(store)

    seen: list[tuple[str, int]] = []
    cursor: str | None = None
    while True:
        page = await office.attendance_page(AttendanceFilter(), cursor, 3)
        seen += [(row.site_id, row.seq) for row in page.rows]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor

    expected = [(s, n) for n in range(1, 8) for s in (site, "site-b")]
    assert seen == expected


async def test_attendance_filters_by_site_person_and_day(
    store: Store, site: str
) -> None:
    items = records(site, Stream.ATTENDANCE, 1, 6)
    items[5] = record(
        site, Stream.ATTENDANCE, 6, {"person_id": "p0", "local_day": "2026-03-03"}
    )
    await store.apply_batch(prepared(site, Stream.ATTENDANCE, items))
    office = OfficeService(store)

    person = await office.attendance_page(AttendanceFilter(person_id="p0"), None, 50)
    next_day = AttendanceFilter(
        site_id=site, day_from="2026-03-03", day_to="2026-03-03"
    )
    day = await office.attendance_page(next_day, None, 50)
    elsewhere = await office.attendance_page(AttendanceFilter(site_id="zz"), None, 50)

    assert [r.seq for r in person.rows] == [3, 6]
    assert [r.seq for r in day.rows] == [6]
    assert elsewhere.rows == []
