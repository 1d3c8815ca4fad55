"""Security: camera API keys, random and shown once; only their hash is stored.

A key carries 256 random bits, so a plain SHA-256 is safe to store and lets
the gateway find the key by its hash in one indexed lookup.
"""

from __future__ import annotations

import hashlib
import secrets

KEY_PREFIX = "eak_"


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def looks_like_api_key(credential: str) -> bool:
    return credential.startswith(KEY_PREFIX)
