"""Security: sign and verify the appliance's access tokens (JWT, RFC 7519).

Verification pins the one configured algorithm (so ``alg: none`` and
HS256-with-a-public-key confusion are refused, RFC 8725 section 3.1),
requires ``exp``, ``iat``, ``iss``, ``aud``, ``sub`` and ``jti``, checks
issuer and audience, and allows a small clock leeway. Revocation is the
caller's job: it needs the database.
"""

from __future__ import annotations

import os
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt

from edge_agent.errors import Unauthenticated
from edge_agent.models import PrincipalKind, Role

_REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub", "jti"]


@dataclass(frozen=True, slots=True)
class TokenClaims:
    subject: str
    role: Role
    kind: PrincipalKind
    token_id: str
    issued_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class SigningKeys:
    algorithm: str
    signing_key: Any
    verifying_key: Any


class TokenCodec:
    def __init__(
        self, keys: SigningKeys, issuer: str, audience: str, leeway_s: int
    ) -> None:
        self._keys = keys
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway_s

    def issue(
        self,
        subject: str,
        role: Role,
        kind: PrincipalKind,
        now: datetime,
        ttl: timedelta,
    ) -> tuple[str, TokenClaims]:
        claims = TokenClaims(subject, role, kind, uuid.uuid4().hex, now, now + ttl)
        payload = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": subject,
            "role": role.value,
            "kind": kind.value,
            "jti": claims.token_id,
            "iat": int(now.timestamp()),
            "nbf": int(now.timestamp()),
            "exp": int(claims.expires_at.timestamp()),
        }
        token = jwt.encode(payload, self._keys.signing_key, self._keys.algorithm)
        return token, claims

    def verify(self, token: str) -> TokenClaims:
        """The token's claims, or :class:`Unauthenticated` saying what is wrong."""
        try:
            payload = jwt.decode(
                token,
                self._keys.verifying_key,
                algorithms=[self._keys.algorithm],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": _REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("the token has expired") from exc
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated(f"the token is not valid: {exc}") from exc
        return _claims(payload)


def _claims(payload: dict[str, Any]) -> TokenClaims:
    try:
        role = Role(payload["role"])
        kind = PrincipalKind(payload["kind"])
    except (KeyError, ValueError) as exc:
        raise Unauthenticated("the token names no valid role") from exc
    if role is Role.CAMERA or kind not in (PrincipalKind.ACCOUNT, PrincipalKind.TOKEN):
        raise Unauthenticated("cameras authenticate with API keys, not tokens")
    return TokenClaims(
        subject=str(payload["sub"]),
        role=role,
        kind=kind,
        token_id=str(payload["jti"]),
        issued_at=datetime.fromtimestamp(payload["iat"], UTC),
        expires_at=datetime.fromtimestamp(payload["exp"], UTC),
    )


def load_signing_keys(
    algorithm: str,
    secret_file: Path,
    private_key_file: Path | None,
    public_key_file: Path | None,
) -> SigningKeys:
    """Read the keys for ``algorithm``; a missing HS256 secret is created (0600)."""
    if algorithm == "HS256":
        secret = _read_or_create_secret(secret_file)
        return SigningKeys(algorithm, secret, secret)
    if private_key_file is None or public_key_file is None:
        raise ValueError(f"{algorithm} needs private_key_file and public_key_file")
    return SigningKeys(
        algorithm, private_key_file.read_bytes(), public_key_file.read_bytes()
    )


def _read_or_create_secret(path: Path) -> bytes:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: two processes starting at once must not both write a secret.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_bytes().strip()
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    return path.read_bytes().strip()
