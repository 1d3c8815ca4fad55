"""Bearer tokens: how they are made and the one form in which they are kept.

Tokens are 256 random bits, so an unsalted SHA-256 is enough to keep them:
nothing short of the token itself finds a preimage, and the digest can be
looked up directly. The token is shown once and never stored or logged.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Final

_PREFIX: Final = "cs_"


def new_token() -> str:
    """A fresh random token; the prefix makes it recognisable in a leak scan."""
    return _PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """The SHA-256 hex digest under which ``token`` is kept."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def matches(token: str, expected_hash: str) -> bool:
    """Whether ``token`` has ``expected_hash``, in constant time."""
    return hmac.compare_digest(token_hash(token), expected_hash)
