"""Audit service on a real SQLite file: the chain grows, lists and shows tampering."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge_agent.clients.storage.audit import AuditRepository
from edge_agent.clients.storage.database import Database
from edge_agent.clock import to_text
from edge_agent.errors import EdgeError, InvalidInput
from edge_agent.models import AuditEntry, Principal, PrincipalKind, Role, local_admin
from edge_agent.request_context import client_address_var
from edge_agent.services.audit import (
    GENESIS_HASH,
    AuditAction,
    AuditFilter,
    AuditService,
    ChainReport,
    entry_hash,
)

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
ALICE = Principal(PrincipalKind.ACCOUNT, "alice", Role.ADMIN)
BOB = Principal(PrincipalKind.ACCOUNT, "bob", Role.USER)


class TickClock:
    """A clock that moves one minute forward each time it is read."""

    def __init__(self, start: datetime) -> None:
        self.moment = start - timedelta(minutes=1)

    def now(self) -> datetime:
        self.moment += timedelta(minutes=1)
        return self.moment


@dataclass
class Log:
    service: AuditService
    repository: AuditRepository
    path: Path


@pytest.fixture
async def log(tmp_path: Path) -> AsyncIterator[Log]:
    """An audit service over a fresh database file."""
    path = tmp_path / "edge.sqlite3"
    db = Database(path)
    await db.open()
    repository = AuditRepository(db)
    yield Log(AuditService(repository, TickClock(START)), repository, path)
    await db.close()


async def _record_five(log: Log) -> list[AuditEntry]:
    """Five entries from two actors and an anonymous failure, one minute apart."""
    service = log.service
    return [
        await service.record(ALICE, AuditAction.LOGIN, target="account:alice"),
        await service.record(ALICE, AuditAction.PERSON_CREATED, target="person:p1"),
        await service.record(
            None, AuditAction.LOGIN_FAILED, target="account:bob", outcome="failure"
        ),
        await service.record(BOB, AuditAction.LOGIN, target="account:bob"),
        await service.record(
            ALICE, AuditAction.CAMERA_REGISTERED, details={"direction": "entry"}
        ),
    ]


def _tamper(path: Path, *statements: tuple[str, tuple[object, ...]]) -> None:
    """Change the file behind the service's back, as someone with shell access could."""
    with closing(sqlite3.connect(path)) as conn, conn:
        for sql, params in statements:
            conn.execute(sql, params)


def _stored(path: Path, seq: int) -> sqlite3.Row:
    with closing(sqlite3.connect(path)) as conn:
        conn.row_factory = sqlite3.Row
        row: sqlite3.Row = conn.execute(
            "SELECT * FROM audit_log WHERE seq = ?", (seq,)
        ).fetchone()
        return row


async def test_chain_grows_with_contiguous_seqs_and_linked_hashes(log: Log) -> None:
    entries = await _record_five(log)

    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == GENESIS_HASH
    assert [e.prev_hash for e in entries[1:]] == [e.hash for e in entries[:-1]]
    assert len({e.hash for e in entries}) == 5
    assert [e.at for e in entries] == [START + timedelta(minutes=i) for i in range(5)]
    assert await log.service.verify() == _intact(5)


async def test_record_names_the_actor_its_role_and_the_source(log: Log) -> None:
    token = client_address_var.set("192.0.2.7")
    try:
        by_request = await log.service.record(ALICE, AuditAction.LOGIN)
        explicit = await log.service.record(
            local_admin("root"), AuditAction.SETTINGS_CHANGED, source="console"
        )
    finally:
        client_address_var.reset(token)
    anonymous = await log.service.record(None, AuditAction.LOGIN_FAILED)

    assert (by_request.actor, by_request.actor_role, by_request.source) == (
        "account:alice",
        "admin",
        "192.0.2.7",
    )
    assert (explicit.actor, explicit.source) == ("local:root", "console")
    assert (anonymous.actor, anonymous.actor_role, anonymous.source) == (
        "anonymous",
        None,
        None,
    )
    assert by_request.outcome == "success"


async def test_entry_hash_follows_the_documented_serialization() -> None:
    canonical = (
        '{"action":"auth.login","actor":"account:zoë","actor_role":"admin",'
        '"at":"2026-03-02T08:00:00.000000+00:00","details":{"a":[1,"é"],"b":null},'
        '"outcome":"success","prev_hash":"' + GENESIS_HASH + '","seq":1,'
        '"source":null,"target":"account:zoë"}'
    )

    digest = entry_hash(
        seq=1,
        at=START,
        actor="account:zoë",
        actor_role="admin",
        action="auth.login",
        target="account:zoë",
        source=None,
        outcome="success",
        details={"b": None, "a": [1, "é"]},
        prev_hash=GENESIS_HASH,
    )

    assert digest == hashlib.sha256(canonical.encode("utf-8")).hexdigest()


async def test_stored_row_holds_canonical_details_and_the_hash(log: Log) -> None:
    entry = await log.service.record(
        ALICE, AuditAction.CAMERA_KEY_ROTATED, details={"grace_s": 60, "b": "ü"}
    )

    row = _stored(log.path, entry.seq)

    assert row["details"] == '{"b":"ü","grace_s":60}'
    assert row["at"] == to_text(START)
    assert row["hash"] == entry.hash


async def test_concurrent_records_keep_the_chain_valid(log: Log) -> None:
    entries = await asyncio.gather(
        *(
            log.service.record(ALICE, AuditAction.FACE_ENROLLED, target=f"face:{i}")
            for i in range(40)
        )
    )

    assert sorted(e.seq for e in entries) == list(range(1, 41))
    assert await log.service.verify() == _intact(40)


async def test_secret_looking_detail_keys_are_dropped(log: Log) -> None:
    details = {
        "password": "hunter2",
        "new_password": "x",
        "clientSecret": "x",
        "api_key": "x",
        "apiKey": "x",
        "access_token": "x",
        "refreshToken": "x",
        "credentials": "x",
        "nested": {"private_key": "x", "role": "user"},
        "items": [{"token": "x", "camera": "gate"}],
        "keys": 2,
        "jti": "t-1",
        "role": "admin",
    }

    entry = await log.service.record(ALICE, AuditAction.TOKEN_ISSUED, details=details)

    expected = {
        "nested": {"role": "user"},
        "items": [{"camera": "gate"}],
        "keys": 2,
        "jti": "t-1",
        "role": "admin",
    }
    assert entry.details == expected
    assert "hunter2" not in _stored(log.path, entry.seq)["details"]
    assert await log.service.verify() == _intact(1)


async def test_details_that_are_not_json_are_refused(log: Log) -> None:
    with pytest.raises(EdgeError, match="plain JSON"):
        await log.service.record(ALICE, AuditAction.LOGIN, details={"at": START})

    assert (await log.service.list_entries(AuditFilter(), None, 10)).entries == []


def _edit_target(path: Path) -> None:
    _tamper(path, ("UPDATE audit_log SET target = 'person:p9' WHERE seq = 2", ()))


def _delete_middle(path: Path) -> None:
    _tamper(path, ("DELETE FROM audit_log WHERE seq = 3", ()))


def _delete_first(path: Path) -> None:
    _tamper(path, ("DELETE FROM audit_log WHERE seq = 1", ()))


def _forge_in_the_middle(path: Path) -> None:
    """Shift seq 3..5 up and slip a correctly hashed entry in as seq 3."""
    second = _stored(path, 2)
    forged_hash = entry_hash(
        seq=3,
        at=START,
        actor="account:mallory",
        actor_role="admin",
        action=AuditAction.ACCOUNT_CREATED,
        target="account:mallory",
        source=None,
        outcome="success",
        details={},
        prev_hash=second["hash"],
    )
    shifts = [
        ("UPDATE audit_log SET seq = seq + 1 WHERE seq = ?", (seq,))
        for seq in (5, 4, 3)
    ]
    forged = (
        "INSERT INTO audit_log (seq, at, actor, actor_role, action, target, source,"
        " outcome, details, prev_hash, hash) VALUES (3, ?, 'account:mallory',"
        " 'admin', 'account.created', 'account:mallory', NULL, 'success', '{}', ?, ?)",
        (to_text(START), second["hash"], forged_hash),
    )
    _tamper(path, *shifts, forged)


def _forge_at_the_end(path: Path) -> None:
    last = _stored(path, 5)
    forged = (
        "INSERT INTO audit_log (seq, at, actor, action, outcome, prev_hash, hash)"
        " VALUES (6, ?, 'account:mallory', 'account.created', 'success', ?, ?)",
        (to_text(START), last["hash"], "f" * 64),
    )
    _tamper(path, forged)


def _edit_and_rehash(path: Path) -> None:
    """Edit seq 2 and give it a hash that matches its new contents."""
    row = _stored(path, 2)
    rehashed = entry_hash(
        seq=2,
        at=datetime.fromisoformat(row["at"]),
        actor=row["actor"],
        actor_role=row["actor_role"],
        action=row["action"],
        target="person:p9",
        source=row["source"],
        outcome=row["outcome"],
        details={},
        prev_hash=row["prev_hash"],
    )
    sql = "UPDATE audit_log SET target = 'person:p9', hash = ? WHERE seq = 2"
    _tamper(path, (sql, (rehashed,)))


def _garble_details(path: Path) -> None:
    _tamper(path, ("UPDATE audit_log SET details = '{oops' WHERE seq = 5", ()))


@pytest.mark.parametrize(
    ("tamper", "bad_seq", "checked", "reason"),
    [
        pytest.param(_edit_target, 2, 1, "(edited)", id="edited-entry"),
        pytest.param(_delete_middle, 4, 2, "seq 3 missing", id="deleted-middle"),
        pytest.param(_delete_first, 2, 0, "seq 1 missing", id="deleted-first"),
        pytest.param(
            _forge_in_the_middle, 4, 3, "link to seq 3", id="forged-entry-inserted"
        ),
        pytest.param(_forge_at_the_end, 6, 5, "(edited)", id="forged-at-end"),
        pytest.param(
            _edit_and_rehash, 3, 2, "link to seq 2", id="rehashed-edit-breaks-link"
        ),
        pytest.param(_garble_details, 5, 4, "not JSON", id="unreadable-details"),
    ],
)
async def test_verify_finds_the_first_broken_entry(
    log: Log,
    tamper: Callable[[Path], None],
    bad_seq: int,
    checked: int,
    reason: str,
) -> None:
    await _record_five(log)

    tamper(log.path)
    report = await log.service.verify()

    assert (report.ok, report.first_bad_seq, report.checked) == (
        False,
        bad_seq,
        checked,
    )
    assert report.reason is not None
    assert reason in report.reason


async def test_empty_chain_is_intact(log: Log) -> None:
    assert await log.service.verify() == _intact(0)


async def test_chain_is_read_in_batches_in_seq_order(log: Log) -> None:
    await _record_five(log)

    seqs = [entry.seq async for entry in log.repository.iter_chain(batch=2)]

    assert seqs == [1, 2, 3, 4, 5]


@pytest.mark.parametrize(
    ("filters", "seqs"),
    [
        pytest.param(AuditFilter(), [1, 2, 3, 4, 5], id="none"),
        pytest.param(AuditFilter(actor="account:alice"), [1, 2, 5], id="actor"),
        pytest.param(AuditFilter(actor="anonymous"), [3], id="anonymous"),
        pytest.param(AuditFilter(action=AuditAction.LOGIN), [1, 4], id="action"),
        pytest.param(AuditFilter(target="account:bob"), [3, 4], id="target"),
        pytest.param(AuditFilter(outcome="failure"), [3], id="outcome"),
        pytest.param(
            AuditFilter(since=START + timedelta(minutes=3)), [4, 5], id="since"
        ),
        pytest.param(
            AuditFilter(until=START + timedelta(minutes=1)), [1], id="until-exclusive"
        ),
        pytest.param(
            AuditFilter(
                actor="account:alice",
                since=START + timedelta(minutes=1),
                until=START + timedelta(minutes=5),
            ),
            [2, 5],
            id="combined",
        ),
    ],
)
async def test_filters_select_entries(
    log: Log, filters: AuditFilter, seqs: list[int]
) -> None:
    await _record_five(log)

    page = await log.service.list_entries(filters, None, 100)

    assert [e.seq for e in page.entries] == seqs
    assert page.next_cursor is None


async def test_cursor_walks_every_page_once(log: Log) -> None:
    await _record_five(log)

    pages, cursor = [], None
    while True:
        page = await log.service.list_entries(AuditFilter(), cursor, 2)
        pages.append([e.seq for e in page.entries])
        if page.next_cursor is None:
            break
        cursor = page.next_cursor

    assert pages == [[1, 2], [3, 4], [5]]


async def test_cursor_applies_after_filters(log: Log) -> None:
    await _record_five(log)
    alice = AuditFilter(actor="account:alice")

    first = await log.service.list_entries(alice, None, 2)
    second = await log.service.list_entries(alice, first.next_cursor, 2)

    assert ([e.seq for e in first.entries], first.next_cursor) == ([1, 2], 2)
    assert ([e.seq for e in second.entries], second.next_cursor) == ([5], None)


@pytest.mark.parametrize(
    ("cursor", "limit"),
    [
        pytest.param(None, 0, id="limit-zero"),
        pytest.param(None, 501, id="limit-too-large"),
        pytest.param(-1, 10, id="negative-cursor"),
    ],
)
async def test_listing_refuses_bad_paging(
    log: Log, cursor: int | None, limit: int
) -> None:
    with pytest.raises(InvalidInput):
        await log.service.list_entries(AuditFilter(), cursor, limit)


def _intact(checked: int) -> ChainReport:
    return ChainReport(ok=True, checked=checked)
