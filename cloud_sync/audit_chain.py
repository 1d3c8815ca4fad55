"""Audit hash chain rule, shared by the site that writes the chain and the office.

The format, bit for bit:

- Entries are numbered by ``seq`` from 1 with no gaps. The first entry's
  ``prev_hash`` is :data:`GENESIS_HASH` (64 ``"0"`` characters); every later
  entry's ``prev_hash`` is the ``hash`` of the entry before it.
- ``hash`` is the lowercase hex SHA-256 of the UTF-8 bytes of one JSON object
  with exactly these ten members: ``seq`` (integer), ``at`` (RFC 3339 in UTC
  with microseconds and ``+00:00``), ``actor``, ``actor_role`` (string or
  null), ``action``, ``target`` (string or null), ``source`` (string or null),
  ``outcome``, ``details`` (object of JSON values) and ``prev_hash``.
- The object is serialized by :func:`canonical_json`: keys sorted at every
  depth, no whitespace, non-ASCII characters written as themselves, NaN and
  infinities refused.

This module has no I/O and imports nothing from either end, so both compute
the same digest from the same entry.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Protocol

__all__ = [
    "GENESIS_HASH",
    "ChainBreak",
    "ChainEntry",
    "canonical_json",
    "chain_break",
    "entry_hash",
    "recomputed_hash",
    "time_text",
]

# The prev_hash of the first entry: there is no earlier entry to point to.
GENESIS_HASH: Final = "0" * 64


class ChainEntry(Protocol):
    """What a chain check reads of an entry; any object with these fields."""

    @property
    def seq(self) -> int: ...
    @property
    def at(self) -> datetime: ...
    @property
    def actor(self) -> str: ...
    @property
    def actor_role(self) -> str | None: ...
    @property
    def action(self) -> str: ...
    @property
    def target(self) -> str | None: ...
    @property
    def source(self) -> str | None: ...
    @property
    def outcome(self) -> str: ...
    @property
    def details(self) -> Mapping[str, Any]: ...
    @property
    def prev_hash(self) -> str: ...
    @property
    def hash(self) -> str: ...


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """Where and why a run of entries fails to continue a chain."""

    seq: int
    reason: str


def canonical_json(value: Any) -> str:
    """The one JSON text of ``value``: sorted keys, no spaces, UTF-8 left as is."""
    return json.dumps(
        value,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )


def time_text(moment: datetime) -> str:
    """``moment`` as the chain writes it: RFC 3339 in UTC with microseconds."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def entry_hash(
    *,
    seq: int,
    at: datetime,
    actor: str,
    actor_role: str | None,
    action: str,
    target: str | None,
    source: str | None,
    outcome: str,
    details: Mapping[str, Any],
    prev_hash: str,
) -> str:
    """The entry's ``hash`` by the chain format in this module's docstring."""
    document = {
        "seq": seq,
        "at": time_text(at),
        "actor": actor,
        "actor_role": actor_role,
        "action": action,
        "target": target,
        "source": source,
        "outcome": outcome,
        "details": dict(details),
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(canonical_json(document).encode("utf-8")).hexdigest()


def wire_entry(entry: ChainEntry) -> dict[str, Any]:
    """``entry`` as JSON on the wire: the hashed fields, ``at`` as the chain
    writes it, and its ``hash`` (the payload of an ``audit`` record)."""
    return {
        "seq": entry.seq,
        "at": time_text(entry.at),
        "actor": entry.actor,
        "actor_role": entry.actor_role,
        "action": entry.action,
        "target": entry.target,
        "source": entry.source,
        "outcome": entry.outcome,
        "details": dict(entry.details),
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
    }


def recomputed_hash(entry: ChainEntry) -> str:
    """The hash ``entry`` should carry, computed from its other fields."""
    return entry_hash(
        seq=entry.seq,
        at=entry.at,
        actor=entry.actor,
        actor_role=entry.actor_role,
        action=entry.action,
        target=entry.target,
        source=entry.source,
        outcome=entry.outcome,
        details=entry.details,
        prev_hash=entry.prev_hash,
    )


def chain_break(
    entries: Sequence[ChainEntry], after_seq: int, after_hash: str
) -> ChainBreak | None:
    """The first place where ``entries`` fail to continue ``(after_seq, after_hash)``.

    ``entries`` must follow that point directly: the first one is number
    ``after_seq + 1`` and links to ``after_hash``, each later one to the one
    before. ``None`` means every entry links and its hash recomputes.
    """
    seq, previous = after_seq, after_hash
    for entry in entries:
        if entry.seq != seq + 1:
            return ChainBreak(entry.seq, f"seq {seq + 1} expected, got {entry.seq}")
        if entry.prev_hash != previous:
            return ChainBreak(entry.seq, f"prev_hash does not link to seq {seq}")
        if entry.hash != recomputed_hash(entry):
            return ChainBreak(entry.seq, "hash does not match the contents (edited)")
        seq, previous = entry.seq, entry.hash
    return None
