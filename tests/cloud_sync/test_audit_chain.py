"""The shared chain rule: the documented bytes, and where a run of entries breaks."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from cloud_sync.audit_chain import GENESIS_HASH, chain_break, entry_hash
from cloud_sync.protocol import AuditEntry
from edge_agent.services import audit as edge_audit
from tests.cloud_sync.helpers import audit_chain

AT = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def test_hash_is_sha256_of_the_documented_canonical_json() -> None:
    canonical = (
        '{"action":"auth.login","actor":"account:zoë","actor_role":"admin",'
        '"at":"2026-03-02T08:00:00.000000+00:00","details":{"a":[1,"é"],"b":null},'
        '"outcome":"success","prev_hash":"' + GENESIS_HASH + '","seq":1,'
        '"source":null,"target":"account:zoë"}'
    )

    digest = entry_hash(
        seq=1,
        at=AT,
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


def test_the_edge_uses_this_very_rule() -> None:
    assert edge_audit.entry_hash is entry_hash
    assert edge_audit.GENESIS_HASH == GENESIS_HASH


def _entries(raw: list[dict[str, object]]) -> list[AuditEntry]:
    return [AuditEntry.model_validate(item) for item in raw]


def test_sound_chain_has_no_break() -> None:
    chain = _entries(audit_chain(5))

    assert chain_break(chain, 0, GENESIS_HASH) is None
    assert chain_break(chain[2:], 2, chain[1].hash) is None
    assert all(entry.hash_matches() for entry in chain)


def test_edit_missing_entry_and_foreign_start_are_found() -> None:
    chain = _entries(audit_chain(5))
    edited = [*chain[:2], chain[2].model_copy(update={"actor": "x"}), *chain[3:]]

    found = chain_break(edited, 0, GENESIS_HASH)
    missing = chain_break([*chain[:2], *chain[3:]], 0, GENESIS_HASH)
    foreign = chain_break(chain[2:], 2, "f" * 64)

    assert found is not None
    assert (found.seq, "edited" in found.reason) == (3, True)
    assert missing is not None
    assert missing.seq == 4
    assert foreign is not None
    assert foreign.seq == 3
