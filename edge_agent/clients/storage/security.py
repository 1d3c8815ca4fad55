"""Storage client: accounts, camera API keys and token revocations."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime

from edge_agent.clients.storage.database import Database
from edge_agent.clock import from_text, to_text
from edge_agent.errors import Conflict
from edge_agent.models import Role

_INSERT_ACCOUNT = """
INSERT INTO accounts (username, password_hash, role, created_at) VALUES (?, ?, ?, ?)
"""
_GET_ACCOUNT = "SELECT * FROM accounts WHERE username = ?"
_SET_DISABLED = "UPDATE accounts SET disabled = ? WHERE username = ?"
_INSERT_KEY = """
INSERT INTO camera_keys (camera_id, key_hash, created_at) VALUES (?, ?, ?)
"""
_FIND_KEY = """
SELECT camera_id FROM camera_keys
WHERE key_hash = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)
"""
_EXPIRE_KEYS = """
UPDATE camera_keys SET expires_at = ?
WHERE camera_id = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)
"""
_REVOKE_KEYS = """
UPDATE camera_keys SET revoked_at = ? WHERE camera_id = ? AND revoked_at IS NULL
"""
_REVOKE_TOKEN = """
INSERT OR IGNORE INTO revoked_tokens (jti, expires_at, revoked_at) VALUES (?, ?, ?)
"""
_REVOKE_SUBJECT = """
INSERT INTO revoked_subjects (subject, not_before) VALUES (?, ?)
ON CONFLICT (subject) DO UPDATE SET not_before = excluded.not_before
"""
_TOKEN_REVOKED = "SELECT 1 FROM revoked_tokens WHERE jti = ?"
_SUBJECT_NOT_BEFORE = "SELECT not_before FROM revoked_subjects WHERE subject = ?"


@dataclass(frozen=True, slots=True)
class Account:
    username: str
    password_hash: str
    role: Role
    disabled: bool
    created_at: datetime


class AccountRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, account: Account) -> None:
        row = (
            account.username,
            account.password_hash,
            account.role.value,
            to_text(account.created_at),
        )
        try:
            async with self._db.transaction() as conn:
                await conn.execute(_INSERT_ACCOUNT, row)
        except sqlite3.IntegrityError as exc:
            raise Conflict(f"account {account.username!r} already exists") from exc

    async def find(self, username: str) -> Account | None:
        row = await self._db.fetch_one(_GET_ACCOUNT, (username,))
        if row is None:
            return None
        return Account(
            username=row["username"],
            password_hash=row["password_hash"],
            role=Role(row["role"]),
            disabled=bool(row["disabled"]),
            created_at=from_text(row["created_at"]),
        )

    async def set_disabled(self, username: str, disabled: bool) -> bool:
        async with self._db.transaction() as conn:
            cursor = await conn.execute(_SET_DISABLED, (int(disabled), username))
            return cursor.rowcount > 0


class CameraKeyRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, camera_id: str, key_hash: str, now: datetime) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(_INSERT_KEY, (camera_id, key_hash, to_text(now)))

    async def rotate(
        self, camera_id: str, key_hash: str, now: datetime, old_until: datetime
    ) -> None:
        """Add a key; the camera's current keys stay valid until ``old_until``."""
        async with self._db.transaction() as conn:
            await conn.execute(
                _EXPIRE_KEYS, (to_text(old_until), camera_id, to_text(old_until))
            )
            await conn.execute(_INSERT_KEY, (camera_id, key_hash, to_text(now)))

    async def revoke_all(self, camera_id: str, now: datetime) -> int:
        async with self._db.transaction() as conn:
            cursor = await conn.execute(_REVOKE_KEYS, (to_text(now), camera_id))
            return cursor.rowcount

    async def camera_for(self, key_hash: str, now: datetime) -> str | None:
        """The camera a valid (unrevoked, unexpired) key belongs to."""
        row = await self._db.fetch_one(_FIND_KEY, (key_hash, to_text(now)))
        return None if row is None else str(row["camera_id"])


class RevocationRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def revoke_token(self, jti: str, expires_at: datetime, now: datetime) -> None:
        row = (jti, to_text(expires_at), to_text(now))
        async with self._db.transaction() as conn:
            await conn.execute(_REVOKE_TOKEN, row)

    async def revoke_subject(self, subject: str, not_before: datetime) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(_REVOKE_SUBJECT, (subject, to_text(not_before)))

    async def is_revoked(self, jti: str, subject: str, issued_at: datetime) -> bool:
        if await self._db.fetch_one(_TOKEN_REVOKED, (jti,)) is not None:
            return True
        row = await self._db.fetch_one(_SUBJECT_NOT_BEFORE, (subject,))
        # Token times have whole seconds: a token of the revocation second is revoked.
        return row is not None and issued_at <= from_text(row["not_before"])
