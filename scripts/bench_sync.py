"""Benchmark: the site's uploader catching up an offline backlog, against a
plain bulk insert of the same rows into the same kind of store.

In one run, for each central store (SQLite, PostgreSQL):

1. a site database is made through edge_agent's storage layer, holding N
   attendance marks in the outbox, written while no central server is
   configured (one fill, copied for every store, so each starts alike);
2. the real uploader (``SyncService.step`` on the ``attendance`` stream)
   sends them to a real ``CentralServer`` over loopback HTTP, until the
   server has acknowledged every one; the clock runs from the first step to
   the last acknowledgement;
3. the baseline: the same rows, as the central ``records`` table holds
   them, inserted with ``executemany`` into a fresh database of that kind,
   in transactions of one uploader batch each, so both pay the same commits.

It prints store, records, seconds, records/s, baseline records/s, their
ratio, and how many records the central server holds at the end (which must
be N). PostgreSQL databases are made for the run and dropped after it.

    python scripts/bench_sync.py [--records 100000] [--stores sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sqlite3
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from cloud_sync.client import CentralClient
from cloud_sync.protocol import Stream
from cloud_sync.server.http.app import CentralServer
from cloud_sync.server.http.keys import SITES, STORE
from cloud_sync.server.settings import load_settings as central_settings
from cloud_sync.server.store import build_store
from edge_agent.clients.storage.database import Database
from edge_agent.clients.storage.deliveries import DeliveryRepository
from edge_agent.clients.storage.outbox import (
    NewRecord,
    OutboxRepository,
    append,
)
from edge_agent.clients.storage.sync_sources import OutboxSource, StreamSource
from edge_agent.clock import SystemClock, to_text
from edge_agent.config import SyncSettings
from edge_agent.services.sync import SyncService

SITE = "bench-site"
STREAM = Stream.ATTENDANCE
DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
FILL_CHUNK = 1000
PEOPLE = 250

_SITE_ROWS = "SELECT * FROM outbox WHERE stream = ? ORDER BY seq"
_SQLITE_INSERT = """
INSERT INTO records (site_id, stream, seq, id, type, occurred_at, monotonic_ns,
                     boot_id, payload, day, person_id, chain_hash, received_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)
"""
_POSTGRES_INSERT = """
INSERT INTO records (site_id, stream, seq, id, type, occurred_at, monotonic_ns,
                     boot_id, payload, day, person_id, chain_hash, received_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL, $12)
"""


@dataclass(frozen=True)
class Result:
    store: str
    records: int
    seconds: float
    baseline_per_s: float
    held: int

    @property
    def per_s(self) -> float:
        return self.records / self.seconds

    @property
    def ratio(self) -> float:
        return self.per_s / self.baseline_per_s


# --- the site ---------------------------------------------------------------


def _mark_payload(n: int, at: datetime) -> dict[str, Any]:
    """What ``sync_records.mark_recorded`` ships for a recognized mark."""
    person = n % PEOPLE
    return {
        "mark_id": n,
        "person_id": f"person-{person:04d}",
        "employee_no": f"E{person:05d}",
        "camera_id": f"gate-{n % 4}",
        "kind": "check_in" if (n // PEOPLE) % 2 == 0 else "check_out",
        "marked_at": to_text(at),
        "local_day": at.date().isoformat(),
        "work_day": at.date().isoformat(),
        "similarity": 0.9 + (n % 10) / 100,
        "decision_id": n,
        "source": "camera",
        "classification": "on_time",
        "shift": "day",
    }


async def fill_site(path: Path, count: int) -> None:
    """A site database with ``count`` unsent marks, written as the daemon
    writes them: one outbox append each, many per transaction."""
    db = Database(path)
    await db.open()
    start = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
    try:
        for first in range(1, count + 1, FILL_CHUNK):
            async with db.transaction() as conn:
                for n in range(first, min(first + FILL_CHUNK, count + 1)):
                    at = start + timedelta(seconds=n)
                    payload = _mark_payload(n, at)
                    new = NewRecord(STREAM.value, "mark.recorded", at, payload)
                    await append(conn, new)
    finally:
        await db.close()


def copy_site(source: Path, target: Path) -> None:
    """A consistent copy (SQLite's online backup), WAL included."""
    with (
        closing(sqlite3.connect(source)) as src,
        closing(sqlite3.connect(target)) as dst,
    ):
        src.backup(dst)


def central_rows(site: Path) -> list[tuple[Any, ...]]:
    """The site's records as the central ``records`` table holds them."""
    received = to_text(datetime.now(UTC))
    with closing(sqlite3.connect(site)) as conn:
        conn.row_factory = sqlite3.Row
        rows = conn.execute(_SITE_ROWS, (STREAM.value,)).fetchall()
    return [
        (
            SITE,
            STREAM.value,
            row["seq"],
            row["id"],
            row["type"],
            row["occurred_at"],
            row["monotonic_ns"],
            row["boot_id"],
            row["payload"],
            json.loads(row["payload"])["local_day"],
            json.loads(row["payload"])["person_id"],
            received,
        )
        for row in rows
    ]


# --- the uploader -----------------------------------------------------------


@asynccontextmanager
async def central(url: str) -> AsyncIterator[tuple[CentralServer, str]]:
    """A central server on ``url``, on a free loopback port, knowing the site."""
    settings = central_settings(
        overrides={
            "database": {"url": url},
            "server": {"host": "127.0.0.1", "port": 0},
            "logging": {"level": "WARNING"},
        }
    )
    server = CentralServer(settings)
    await server.start()
    try:
        _, token = await server.app[SITES].add(SITE)
        yield server, token
    finally:
        await server.stop()


async def upload(site: Path, store_url: str, batch_records: int) -> tuple[float, int]:
    """Seconds the uploader takes to have every record acknowledged, and how
    many records the central server holds then."""
    async with central(store_url) as (server, token):
        db = Database(site)
        await db.open()
        try:
            sync = _uploader(
                db, f"http://127.0.0.1:{server.port}", token, batch_records
            )
            started = time.perf_counter()
            await _drain(sync)
            seconds = time.perf_counter() - started
            await sync.stop()
        finally:
            await db.close()
        held = await server.app[STORE].count_records(SITE, STREAM)
    return seconds, held


def _uploader(db: Database, url: str, token: str, batch_records: int) -> SyncService:
    outbox = OutboxRepository(db)
    sources: dict[Stream, StreamSource] = {STREAM: OutboxSource(outbox, STREAM.value)}
    settings = SyncSettings(
        url=url,
        site_token=token,
        batch_records=batch_records,
        backoff_base_s=0.05,
        backoff_cap_s=0.5,
    )
    return SyncService(
        sources,
        DeliveryRepository(db),
        outbox,
        lambda: CentralClient(url, token, timeout_s=30),
        settings,
        SITE,
        SystemClock(),
    )


async def _drain(sync: SyncService) -> None:
    """Step until nothing is left; a pause means idle or a backoff."""
    while True:
        pause = await sync.step(STREAM)
        if pause == 0:
            continue
        status = (await sync.status())[0]
        if status.lag_records == 0:
            return
        if status.state == "stopped":
            raise RuntimeError(f"the stream stopped: {status.last_error}")
        await asyncio.sleep(pause)


# --- the baseline -----------------------------------------------------------


def _chunks(rows: list[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    for first in range(0, len(rows), size):
        yield rows[first : first + size]


async def _schema(url: str) -> None:
    """Make the central schema in a fresh database, through the store itself."""
    store = build_store(url)
    await store.open()
    await store.close()


async def baseline_sqlite(path: Path, rows: list[tuple[Any, ...]], size: int) -> float:
    await _schema(f"sqlite://{path}")
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        # The same durability as the store's own connection (WAL, NORMAL).
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        started = time.perf_counter()
        for chunk in _chunks(rows, size):
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(_SQLITE_INSERT, chunk)
            conn.execute("COMMIT")
        return len(rows) / (time.perf_counter() - started)


async def baseline_postgres(url: str, rows: list[tuple[Any, ...]], size: int) -> float:
    await _schema(url)
    typed = [_postgres_row(row) for row in rows]
    conn = await asyncpg.connect(url)
    try:
        started = time.perf_counter()
        for chunk in _chunks(typed, size):
            async with conn.transaction():
                await conn.executemany(_POSTGRES_INSERT, chunk)
        return len(rows) / (time.perf_counter() - started)
    finally:
        await conn.close()


def _postgres_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    times = datetime.fromisoformat(row[5]), datetime.fromisoformat(row[11])
    return (*row[:5], times[0], *row[6:11], times[1])


# --- PostgreSQL databases of the run ----------------------------------------


class PostgresDatabases:
    """Databases made for this run on one server, all dropped at the end."""

    def __init__(self, admin_dsn: str) -> None:
        self._admin_dsn = admin_dsn
        self._names: list[str] = []

    async def create(self, purpose: str) -> str:
        name = f"bench_sync_{purpose}_{secrets.token_hex(4)}"
        await self._execute(f'CREATE DATABASE "{name}"')
        self._names.append(name)
        parts = urlsplit(self._admin_dsn)
        return urlunsplit(parts._replace(path=f"/{name}"))

    async def drop_all(self) -> None:
        for name in self._names:
            await self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._names.clear()

    async def _execute(self, sql: str) -> None:
        conn = await asyncpg.connect(self._admin_dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()


# --- one run ----------------------------------------------------------------


async def bench_store(
    kind: str, folder: Path, filled: Path, args: argparse.Namespace
) -> Result:
    site = folder / f"site-{kind}.sqlite3"
    copy_site(filled, site)
    rows = central_rows(site)
    if kind == "sqlite":
        seconds, held = await upload(
            site, f"sqlite://{folder / 'central.sqlite3'}", args.batch
        )
        base = await baseline_sqlite(folder / "baseline.sqlite3", rows, args.batch)
    else:
        databases = PostgresDatabases(args.postgres_dsn)
        try:
            seconds, held = await upload(
                site, await databases.create("central"), args.batch
            )
            base_url = await databases.create("baseline")
            base = await baseline_postgres(base_url, rows, args.batch)
        finally:
            await databases.drop_all()
    return Result(kind, len(rows), seconds, base, held)


def print_table(results: list[Result]) -> None:
    header = (
        f"{'store':<11} {'records':>8} {'seconds':>8} {'records/s':>10} "
        f"{'baseline records/s':>19} {'ratio':>6} {'held':>8}"
    )
    print(header)
    for r in results:
        print(
            f"{r.store:<11} {r.records:>8} {r.seconds:>8.2f} {r.per_s:>10.0f} "
            f"{r.baseline_per_s:>19.0f} {r.ratio:>6.3f} {r.held:>8}"
        )


async def run(args: argparse.Namespace) -> list[Result]:
    folder = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    filled = folder / "site-filled.sqlite3"
    started = time.perf_counter()
    await fill_site(filled, args.records)
    print(
        f"{args.records} attendance records filled offline in "
        f"{time.perf_counter() - started:.1f} s; batches of {args.batch}; "
        f"{os.cpu_count()} cores"
    )
    return [await bench_store(kind, folder, filled, args) for kind in args.stores]


def _stores(value: str) -> list[str]:
    kinds = [k.strip() for k in value.split(",") if k.strip()]
    unknown = set(kinds) - {"sqlite", "postgresql"}
    if unknown or not kinds:
        raise argparse.ArgumentTypeError(f"unknown stores: {sorted(unknown)}")
    return kinds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--stores", type=_stores, default=["sqlite", "postgresql"])
    parser.add_argument("--postgres-dsn", default=DEFAULT_DSN)
    parser.add_argument(
        "--batch", type=int, default=500, help="records per uploader batch"
    )
    args = parser.parse_args(argv)
    results = asyncio.run(run(args))
    print()
    print_table(results)


if __name__ == "__main__":
    main()
