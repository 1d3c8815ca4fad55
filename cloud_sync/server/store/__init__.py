"""Storage of the central server: one :class:`Store` interface, two databases."""

from __future__ import annotations

from pathlib import Path

from cloud_sync.server.store.model import Store

__all__ = ["URL_PREFIXES", "Store", "build_store"]

_SQLITE_PREFIX = "sqlite://"
_POSTGRES_PREFIXES = ("postgresql://", "postgres://")
# The prefixes of the database URLs a store can be built from.
URL_PREFIXES = (_SQLITE_PREFIX, *_POSTGRES_PREFIXES)


def build_store(
    url: str,
    *,
    pool_min_size: int = 1,
    pool_max_size: int = 10,
    busy_timeout_ms: int = 5000,
) -> Store:
    """The store ``url`` names, not yet opened.

    ``sqlite://PATH`` (``sqlite:///var/lib/x.sqlite3`` is absolute) selects
    SQLite; ``postgresql://...`` (or ``postgres://``) selects PostgreSQL.
    """
    if url.startswith(_SQLITE_PREFIX):
        from cloud_sync.server.store.sqlite import SqliteStore

        return SqliteStore(Path(url.removeprefix(_SQLITE_PREFIX)), busy_timeout_ms)
    if url.startswith(_POSTGRES_PREFIXES):
        from cloud_sync.server.store.postgres import PostgresStore

        return PostgresStore(url, pool_min_size, pool_max_size)
    raise ValueError("database URL must start with sqlite:// or postgresql://")
