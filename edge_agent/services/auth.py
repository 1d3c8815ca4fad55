"""Authentication service: accounts, logins, tokens and camera keys -> principals.

Every act here is audited, failures included. Password checks are
memory-hard and run off the event loop; an unknown username costs the same
time as a wrong password, so usernames cannot be probed.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from datetime import timedelta

from edge_agent.clients.storage.security import (
    Account,
    AccountRepository,
    CameraKeyRepository,
    RevocationRepository,
)
from edge_agent.clock import Clock
from edge_agent.config import AuthSettings
from edge_agent.errors import InvalidInput, NotFound, Unauthenticated
from edge_agent.models import Principal, PrincipalKind, Role
from edge_agent.security.api_keys import hash_api_key, looks_like_api_key
from edge_agent.security.passwords import dummy_verify, hash_password, verify_password
from edge_agent.security.tokens import TokenClaims, TokenCodec
from edge_agent.services.audit import AuditAction, AuditOutcome, AuditService

logger = logging.getLogger(__name__)

_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MIN_PASSWORD_LENGTH = 10


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    claims: TokenClaims

    @property
    def expires_in_s(self) -> int:
        delta = self.claims.expires_at - self.claims.issued_at
        return int(delta.total_seconds())


class AuthService:
    def __init__(
        self,
        accounts: AccountRepository,
        keys: CameraKeyRepository,
        revocations: RevocationRepository,
        codec: TokenCodec,
        audit: AuditService,
        settings: AuthSettings,
        clock: Clock,
    ) -> None:
        self._accounts = accounts
        self._keys = keys
        self._revocations = revocations
        self._codec = codec
        self._audit = audit
        self._settings = settings
        self._clock = clock

    async def create_account(
        self, username: str, password: str, role: Role, actor: Principal
    ) -> Account:
        if not _USERNAME.match(username):
            raise InvalidInput("a username is 1-64 letters, digits, '.', '_', '@', '-'")
        if role is Role.CAMERA:
            raise InvalidInput("cameras have API keys, not accounts")
        if len(password) < MIN_PASSWORD_LENGTH:
            raise InvalidInput(
                f"a password needs at least {MIN_PASSWORD_LENGTH} characters"
            )

        password_hash = await asyncio.to_thread(hash_password, password)
        account = Account(username, password_hash, role, False, self._clock.now())
        async with self._audit.atomic():
            await self._accounts.add(account)
            await self._audit.record(
                actor,
                AuditAction.ACCOUNT_CREATED,
                target=f"account:{username}",
                details={"role": role.value},
            )
        return account

    async def login(self, username: str, password: str) -> IssuedToken:
        """A short-lived access token for a valid, enabled account."""
        account = await self._accounts.find(username)
        valid = await asyncio.to_thread(_check_password, account, password)
        if account is None or not valid or account.disabled:
            await self._audit.record(
                None,
                AuditAction.LOGIN_FAILED,
                target=f"account:{username}",
                outcome=AuditOutcome.FAILURE,
            )
            raise Unauthenticated("wrong username or password")

        issued = self._issue(
            username, account.role, PrincipalKind.ACCOUNT, self._access_ttl
        )
        principal = Principal(PrincipalKind.ACCOUNT, username, account.role)
        await self._audit.record(
            principal,
            AuditAction.LOGIN,
            target=f"account:{username}",
            details={"jti": issued.claims.token_id},
        )
        return issued

    async def issue_token(
        self, subject: str, role: Role, ttl_s: int | None, actor: Principal
    ) -> IssuedToken:
        """A token for automation; its lifetime is capped by the settings."""
        ttl = timedelta(seconds=ttl_s) if ttl_s else self._access_ttl
        if (
            ttl > timedelta(seconds=self._settings.max_token_ttl_s)
            or ttl.total_seconds() < 1
        ):
            raise InvalidInput(
                f"a token lives 1 to {self._settings.max_token_ttl_s} seconds"
            )
        if role is Role.CAMERA:
            raise InvalidInput("cameras have API keys, not tokens")

        issued = self._issue(subject, role, PrincipalKind.TOKEN, ttl)
        await self._audit.record(
            actor,
            AuditAction.TOKEN_ISSUED,
            target=f"subject:{subject}",
            details={
                "jti": issued.claims.token_id,
                "role": role.value,
                "ttl_s": int(ttl.total_seconds()),
            },
        )
        return issued

    async def revoke_token(self, token_id: str, actor: Principal) -> None:
        now = self._clock.now()
        # A revoked id is kept until the longest-lived token would have expired.
        keep_until = now + timedelta(seconds=self._settings.max_token_ttl_s)
        async with self._audit.atomic():
            await self._revocations.revoke_token(token_id, keep_until, now)
            await self._audit.record(
                actor, AuditAction.TOKEN_REVOKED, target=f"token:{token_id}"
            )

    async def revoke_subject(self, subject: str, actor: Principal) -> None:
        """Revoke every token issued to ``subject`` until now."""
        async with self._audit.atomic():
            await self._revocations.revoke_subject(
                subject, self._clock.now().replace(microsecond=0)
            )
            await self._audit.record(
                actor, AuditAction.TOKEN_REVOKED, target=f"subject:{subject}"
            )

    async def authenticate(self, credential: str) -> Principal:
        """Resolve a bearer credential (token or camera key) to its principal."""
        if looks_like_api_key(credential):
            return await self.authenticate_key(credential)
        claims = self._codec.verify(credential)
        await self._check_not_revoked(claims)
        return Principal(claims.kind, claims.subject, claims.role, claims.token_id)

    async def authenticate_key(self, key: str) -> Principal:
        camera_id = await self._keys.camera_for(hash_api_key(key), self._clock.now())
        if camera_id is None:
            raise Unauthenticated("unknown, expired or revoked API key")
        return Principal(
            PrincipalKind.CAMERA, camera_id, Role.CAMERA, camera_id=camera_id
        )

    async def set_account_disabled(
        self, username: str, disabled: bool, actor: Principal
    ) -> None:
        async with self._audit.atomic():
            if not await self._accounts.set_disabled(username, disabled):
                raise NotFound(f"no account {username!r}")
            if disabled:
                await self.revoke_subject(username, actor)

    @property
    def _access_ttl(self) -> timedelta:
        return timedelta(seconds=self._settings.access_token_ttl_s)

    def _issue(
        self, subject: str, role: Role, kind: PrincipalKind, ttl: timedelta
    ) -> IssuedToken:
        token, claims = self._codec.issue(subject, role, kind, self._clock.now(), ttl)
        logger.info("Issued token %s to %s (%s)", claims.token_id, subject, role)
        return IssuedToken(token, claims)

    async def _check_not_revoked(self, claims: TokenClaims) -> None:
        if await self._revocations.is_revoked(
            claims.token_id, claims.subject, claims.issued_at
        ):
            raise Unauthenticated("the token has been revoked")
        if claims.kind is PrincipalKind.ACCOUNT:
            account = await self._accounts.find(claims.subject)
            if account is None or account.disabled:
                raise Unauthenticated("the token's account is gone or disabled")


def _check_password(account: Account | None, password: str) -> bool:
    if account is None:
        dummy_verify(password)
        return False
    return verify_password(password, account.password_hash)
