"""Audit service: record who did what as a hash chain, list it, and verify it.

The chain format, which the central server recomputes to check each batch:

- Entries are numbered by ``seq`` from 1 with no gaps. The first entry's
  ``prev_hash`` is ``GENESIS_HASH`` (64 ``"0"`` characters); every later
  entry's ``prev_hash`` is the ``hash`` of the entry before it.
- ``hash`` is the lowercase hex SHA-256 of the UTF-8 bytes of one JSON object
  with exactly these ten members::

      seq         integer
      at          string, clock.to_text(at): RFC 3339 in UTC with
                  microseconds and "+00:00", e.g. "2026-03-02T08:00:00.000000+00:00"
      actor       string
      actor_role  string or null
      action      string
      target      string or null
      source      string or null
      outcome     string
      details     object (JSON values only)
      prev_hash   string, 64 lowercase hex characters

  serialized as ``json.dumps(obj, sort_keys=True, separators=(",", ":"),
  ensure_ascii=False, allow_nan=False)``: keys sorted at every depth, no
  whitespace, non-ASCII characters written as themselves. :func:`entry_hash`
  is that rule with no I/O; it lives in :mod:`cloud_sync.audit_chain`, so
  the central server checks the chain with the very same code.
- ``details`` is stored as the same canonical JSON text.

A chain check finds an edited, inserted or deleted entry, but not a forger
who rewrites every hash from the edit to the end, nor entries cut off the
end: only a copy held elsewhere (the central server's) shows those.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from cloud_sync.audit_chain import (
    GENESIS_HASH,
    canonical_json,
    entry_hash,
    recomputed_hash,
)
from edge_agent.clients.storage.audit import (
    AuditFilter,
    AuditRepository,
    UnreadableAuditEntry,
)
from edge_agent.clock import Clock
from edge_agent.errors import EdgeError
from edge_agent.models import AuditEntry, Principal
from edge_agent.request_context import client_address_var
from edge_agent.services.paging import (
    MAX_PAGE_SIZE,
    check_cursor,
    check_limit,
    split_page,
)

__all__ = [
    "GENESIS_HASH",
    "MAX_PAGE_SIZE",
    "AuditAction",
    "AuditFilter",
    "AuditOutcome",
    "AuditPage",
    "AuditService",
    "ChainReport",
    "entry_hash",
]

logger = logging.getLogger(__name__)

ANONYMOUS = "anonymous"

# What makes a detail key look like it names a credential. Matching is broad
# on purpose: dropping a harmless detail costs less than keeping a password in
# a log that is kept for years and copied to the central office. "key" and
# "token" count only as the end of a word, so "keys" (a count) or "keyboard"
# survive while "api_key", "apiKey" and "accessToken" do not.
_SECRET_PARTS = ("password", "passwd", "passphrase", "secret", "credential")
_SECRET_WORD_ENDINGS = ("key", "token")
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_WORD_SEPARATOR = re.compile(r"[^a-z0-9]+")


class AuditAction:
    """The acts the appliance audits; the value is stored in ``action``."""

    LOGIN: Final = "auth.login"
    LOGIN_FAILED: Final = "auth.login_failed"
    TOKEN_ISSUED: Final = "token.issued"
    TOKEN_REVOKED: Final = "token.revoked"
    CAMERA_KEY_CREATED: Final = "camera_key.created"
    CAMERA_KEY_ROTATED: Final = "camera_key.rotated"
    CAMERA_KEY_REVOKED: Final = "camera_key.revoked"
    ACCOUNT_CREATED: Final = "account.created"
    PERSON_CREATED: Final = "person.created"
    PERSON_UPDATED: Final = "person.updated"
    PERSON_DEACTIVATED: Final = "person.deactivated"
    PERSON_ACTIVATED: Final = "person.activated"
    PERSON_ERASED: Final = "person.erased"
    PEOPLE_IMPORTED: Final = "people.imported"
    FACE_ENROLLED: Final = "face.enrolled"
    FACE_REMOVED: Final = "face.removed"
    RECOGNIZER_REPAIRED: Final = "recognizer.repaired"
    CAMERA_REGISTERED: Final = "camera.registered"
    CAMERA_UPDATED: Final = "camera.updated"
    CAMERA_ENABLED: Final = "camera.enabled"
    CAMERA_DISABLED: Final = "camera.disabled"
    CAMERA_REMOVED: Final = "camera.removed"
    CAMERA_RESTORED: Final = "camera.restored"
    STREAM_REGISTERED: Final = "stream.registered"
    STREAM_REMOVED: Final = "stream.removed"
    ACCESS_DENIED: Final = "request.forbidden"
    ATTENDANCE_CORRECTED: Final = "attendance.corrected"
    ATTENDANCE_REVIEWED: Final = "attendance.reviewed"
    SHIFT_CREATED: Final = "shift.created"
    SHIFT_ASSIGNED: Final = "shift.assigned"
    SETTINGS_CHANGED: Final = "settings.changed"


class AuditOutcome:
    """How an audited act ended; the value is stored in ``outcome``."""

    SUCCESS: Final = "success"
    FAILURE: Final = "failure"
    DENIED: Final = "denied"


@dataclass(frozen=True, slots=True)
class AuditPage:
    """One page of a listing; ``next_cursor`` is ``None`` on the last page."""

    entries: list[AuditEntry]
    next_cursor: int | None


@dataclass(frozen=True, slots=True)
class ChainReport:
    """The result of a chain check: ``checked`` counts the entries found sound."""

    ok: bool
    checked: int
    first_bad_seq: int | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class _Draft:
    """An entry before it has its place in the chain: everything but the links."""

    actor: str
    actor_role: str | None
    action: str
    target: str | None
    source: str | None
    outcome: str
    details: dict[str, Any]

    def seal(self, seq: int, at: datetime, prev_hash: str) -> AuditEntry:
        digest = entry_hash(
            seq=seq,
            at=at,
            actor=self.actor,
            actor_role=self.actor_role,
            action=self.action,
            target=self.target,
            source=self.source,
            outcome=self.outcome,
            details=self.details,
            prev_hash=prev_hash,
        )
        return AuditEntry(
            seq=seq,
            at=at,
            actor=self.actor,
            actor_role=self.actor_role,
            action=self.action,
            target=self.target,
            source=self.source,
            outcome=self.outcome,
            details=self.details,
            prev_hash=prev_hash,
            hash=digest,
        )


def atomically(audit: AuditService | None) -> AbstractAsyncContextManager[object]:
    """``audit.atomic()``, or a plain block for a service built without audit."""
    return audit.atomic() if audit is not None else nullcontext()


class AuditService:
    def __init__(self, repository: AuditRepository, clock: Clock) -> None:
        self._repository = repository
        self._clock = clock

    def atomic(self) -> AbstractAsyncContextManager[object]:
        """Store an act and its audit entry as one commit::

            async with audit.atomic():
                await repository.change(...)
                await audit.record(...)

        Only writes belong inside: reads see the last commit, not the block.
        """
        return self._repository.atomic()

    async def record(
        self,
        actor: Principal | None,
        action: str,
        *,
        target: str | None = None,
        outcome: str = AuditOutcome.SUCCESS,
        details: Mapping[str, Any] | None = None,
        source: str | None = None,
    ) -> AuditEntry:
        """Append one entry to the chain and return it as stored.

        Callers pass no secrets in ``details`` (no passwords, keys or tokens;
        put a key's or token's id in ``target``). As a second guard, any key
        that looks like it names a credential is dropped, at any depth.
        ``source`` defaults to the client address of the current request.
        """
        draft = _Draft(
            actor=actor.label if actor is not None else ANONYMOUS,
            actor_role=actor.role.value if actor is not None else None,
            action=action,
            target=target,
            source=source if source is not None else client_address_var.get(),
            outcome=outcome,
            details=_normalized(_without_secrets(details or {}, action)),
        )

        def seal(seq: int, prev_hash: str) -> AuditEntry:
            # Called inside the append transaction, so times follow seq order.
            return draft.seal(seq, self._clock.now(), prev_hash)

        entry = await self._repository.append(seal)
        logger.debug("Audit entry %d: %s by %s", entry.seq, action, entry.actor)
        return entry

    async def list_entries(
        self, filters: AuditFilter, cursor: int | None, limit: int
    ) -> AuditPage:
        """Entries after ``cursor`` (a seq) that match ``filters``, oldest first."""
        check_limit(limit)
        check_cursor(cursor)

        rows = await self._repository.page(
            filters, after_seq=cursor or 0, limit=limit + 1
        )
        return AuditPage(*split_page(rows, limit, lambda entry: entry.seq))

    async def verify(self) -> ChainReport:
        """Walk the whole chain; report the first entry that breaks it, and why.

        A broken chain is returned, not raised or logged as a warning: the
        caller (a command, a scheduled check) decides how loudly to report it.
        """
        report = await self._walk()
        logger.info(
            "Audit chain checked: %d entries sound, first bad seq %s (%s)",
            report.checked,
            report.first_bad_seq,
            report.reason or "none",
        )
        return report

    async def _walk(self) -> ChainReport:
        checked = 0
        previous: AuditEntry | None = None
        try:
            async for entry in self._repository.iter_chain():
                problem = _link_problem(entry, previous)
                if problem is not None:
                    return ChainReport(False, checked, entry.seq, problem)
                checked, previous = checked + 1, entry
        except UnreadableAuditEntry as exc:
            return ChainReport(False, checked, exc.seq, exc.problem)
        return ChainReport(True, checked)


def _link_problem(entry: AuditEntry, previous: AuditEntry | None) -> str | None:
    """Why ``entry`` cannot follow ``previous``, or ``None`` when it can."""
    expected_seq = 1 if previous is None else previous.seq + 1
    if entry.seq != expected_seq:
        last_missing = entry.seq - 1
        gap = str(expected_seq)
        if last_missing > expected_seq:
            gap = f"{expected_seq}-{last_missing}"
        return f"seq {gap} missing (deleted)"

    expected_prev = GENESIS_HASH if previous is None else previous.hash
    if entry.prev_hash != expected_prev:
        before = "the genesis value" if previous is None else f"seq {previous.seq}"
        return f"prev_hash does not link to {before}"

    if entry.hash != recomputed_hash(entry):
        return "hash does not match the contents (edited)"
    return None


def _without_secrets(details: Mapping[str, Any], action: str) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for key, value in details.items():
        name = str(key)
        if _looks_secret(name):
            # The key's name is safe to log; its value never is.
            logger.warning("Dropped detail %r from audit action %s", name, action)
            continue
        kept[name] = _value_without_secrets(value, action)
    return kept


def _looks_secret(name: str) -> bool:
    lowered = name.lower()
    if any(part in lowered for part in _SECRET_PARTS):
        return True

    words = _WORD_SEPARATOR.split(_CAMEL_BOUNDARY.sub("_", name).lower())
    return any(word.endswith(_SECRET_WORD_ENDINGS) for word in words)


def _value_without_secrets(value: Any, action: str) -> Any:
    if isinstance(value, Mapping):
        return _without_secrets(value, action)
    if isinstance(value, list | tuple):
        return [_value_without_secrets(item, action) for item in value]
    return value


def _normalized(details: dict[str, Any]) -> dict[str, Any]:
    """``details`` as it reads back from storage, so the hash covers that form.

    A value JSON cannot carry (a datetime, NaN) is refused here rather than
    stored in a form that would no longer hash the same.
    """
    try:
        parsed: dict[str, Any] = json.loads(canonical_json(details))
    except (TypeError, ValueError) as exc:
        raise EdgeError(f"audit details must be plain JSON values: {exc}") from exc
    return parsed
