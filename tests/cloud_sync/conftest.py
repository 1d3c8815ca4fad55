"""Fixtures of the sync tests: both stores, a fresh PostgreSQL database, a server."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from cloud_sync.server.http.app import CentralServer
from cloud_sync.server.http.keys import SITES
from cloud_sync.server.settings import Settings, load_settings
from cloud_sync.server.store import build_store
from cloud_sync.server.store.model import Store
from cloud_sync.server.store.postgres import PostgresStore
from cloud_sync.server.tokens import new_token, token_hash

_TABLES = "sites, stream_heads, records, quarantine, idempotency_keys"


@pytest.fixture(autouse=True)
def _clean_sync_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's own CLOUD_SYNC_* variables out of every test."""
    for name in list(os.environ):
        if name.startswith("CLOUD_SYNC_"):
            monkeypatch.delenv(name)


class PostgresDatabases:
    """One fresh database for the whole session, made on first use, then dropped."""

    def __init__(self) -> None:
        self._name = f"cloud_sync_test_{secrets.token_hex(6)}"
        self._admin_dsn: str | None = None

    def dsn(self, admin_dsn: str) -> str:
        if self._admin_dsn is None:
            asyncio.run(_admin(admin_dsn, f'CREATE DATABASE "{self._name}"'))
            self._admin_dsn = admin_dsn
        parts = urlsplit(admin_dsn)
        return urlunsplit(parts._replace(path=f"/{self._name}"))

    def drop(self) -> None:
        if self._admin_dsn is not None:
            sql = f'DROP DATABASE IF EXISTS "{self._name}" WITH (FORCE)'
            asyncio.run(_admin(self._admin_dsn, sql))


async def _admin(dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_databases() -> Iterator[PostgresDatabases]:
    """The session's PostgreSQL database, dropped when the session ends."""
    databases = PostgresDatabases()
    yield databases
    databases.drop()


@pytest.fixture
def pg_url(postgres_dsn: str, pg_databases: PostgresDatabases) -> str:
    """The DSN of the session's fresh database, with every table emptied."""
    url = pg_databases.dsn(postgres_dsn)
    asyncio.run(_reset(url))
    return url


async def _reset(url: str) -> None:
    store = PostgresStore(url)
    await store.open()
    await store.close()
    await _admin(url, f"TRUNCATE {_TABLES}")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty database of each kind; both run the same tests."""
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'central.sqlite3'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    """An open store on ``database_url``."""
    opened = build_store(database_url, pool_max_size=4)
    await opened.open()
    yield opened
    await opened.close()


@dataclass(frozen=True)
class Central:
    """A running central server with one registered site."""

    url: str
    site_id: str
    site_token: str
    admin_token: str
    server: CentralServer


def central_settings(database_url: str, admin_token: str, **sync: float) -> Settings:
    """Settings of a test server: any free port, a 64 KiB body limit."""
    return load_settings(
        overrides={
            "database": {"url": database_url},
            "server": {"port": 0, "max_body_bytes": 64 * 1024},
            "admin": {"token_sha256": token_hash(admin_token)},
            "sync": {"clock_skew_tolerance_s": 120.0, **sync},
        }
    )


async def start_central(
    settings: Settings, site_id: str = "site-a"
) -> tuple[CentralServer, str]:
    """Start a server on ``settings``; register ``site_id`` unless it exists."""
    server = CentralServer(settings)
    await server.start()
    _, token = await server.app[SITES].add(site_id)
    return server, token


@pytest.fixture
async def central(tmp_path: Path) -> AsyncIterator[Central]:
    """A central server on SQLite, on a free port, with site ``site-a``."""
    admin = new_token()
    settings = central_settings(f"sqlite://{tmp_path / 'central.sqlite3'}", admin)
    server, token = await start_central(settings)
    try:
        yield Central(f"http://127.0.0.1:{server.port}", "site-a", token, admin, server)
    finally:
        await server.stop()
