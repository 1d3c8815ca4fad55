"""Security: memory-hard password hashes with the standard library's scrypt.

Format: ``scrypt$<n>$<r>$<p>$<salt, base64>$<hash, base64>``, so the cost can
be raised later without invalidating stored hashes. The defaults (n=2**14,
r=8, p=1: 16 MiB, tens of milliseconds) follow RFC 7914, section 2's advice
for interactive logins. Both functions block; call them off the event loop.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

_N, _R, _P = 2**14, 8, 1
_KEY_BYTES = 32
_MAX_MEMORY = 64 * 1024 * 1024


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, _N, _R, _P)
    return "$".join(["scrypt", str(_N), str(_R), str(_P), _b64(salt), _b64(digest)])


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches; False for a mismatch or a malformed hash."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = _scrypt(password, base64.b64decode(salt), int(n), int(r), int(p))
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


def dummy_verify(password: str) -> None:
    """Spend the time of a real check, so an unknown user cannot be told apart."""
    _scrypt(password, b"\0" * 16, _N, _R, _P)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        maxmem=_MAX_MEMORY,
        dklen=_KEY_BYTES,
    )


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")
