"""``kill -9`` of a central server process while it commits batches loses nothing."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

from cloud_sync.client import CentralClient, Retryable
from cloud_sync.protocol import Record, Stream
from cloud_sync.server.http.app import utc_now
from cloud_sync.server.sites import SiteService
from cloud_sync.server.store import build_store
from tests.cloud_sync.helpers import deliver, records

SITE = "site-a"
TOTAL = 2000
CLI = Path(sys.executable).with_name("cloud-sync")


async def _register(database_url: str) -> str:
    store = build_store(database_url)
    await store.open()
    try:
        _, token = await SiteService(store, utc_now).add(SITE)
    finally:
        await store.close()
    return token


async def _start(config: Path, log: Path) -> tuple[asyncio.subprocess.Process, str]:
    """Start ``cloud-sync serve``; return the process and its base URL."""
    # The child keeps its own copy of the log's descriptor.
    with log.open("ab") as sink:
        process = await asyncio.create_subprocess_exec(
            str(CLI),
            "serve",
            "--config",
            str(config),
            stdout=asyncio.subprocess.PIPE,
            stderr=sink,
        )
    assert process.stdout is not None
    async with asyncio.timeout(15):
        line = (await process.stdout.readline()).decode()
    assert line.startswith("Listening on "), line
    return process, line.removeprefix("Listening on ").strip()


@dataclass
class Progress:
    """The highest seq acknowledged so far; ``passed`` is set beyond ``mark``."""

    mark: int = TOTAL
    acked: int = 0
    passed: asyncio.Event = field(default_factory=asyncio.Event)

    def update(self, acked: int) -> None:
        self.acked = acked
        if acked >= self.mark:
            self.passed.set()


async def _send_all(
    client: CentralClient, items: list[Record], progress: Progress
) -> int:
    """Send batches until every record is acknowledged; track ``progress``."""
    return await deliver(
        client,
        SITE,
        Stream.EVENTS,
        items,
        max_records=25,
        site_head=TOTAL,
        on_acked=progress.update,
    )


async def _send_until_killed(
    client: CentralClient, items: list[Record], progress: Progress
) -> int:
    """Keep sending; return the highest seq acknowledged before the server died."""
    with contextlib.suppress(Retryable):
        await _send_all(client, items, progress)
    return progress.acked


async def test_kill_9_mid_commit_then_resend_gives_exact_counts(
    database_url: str, tmp_path: Path
) -> None:
    url = database_url
    config = tmp_path / "cloud-sync.toml"
    config.write_text(
        f'[database]\nurl = "{url}"\n[server]\nport = 0\n[logging]\nlevel = "WARNING"\n'
    )
    token = await _register(url)
    items = records(SITE, Stream.EVENTS, 1, TOTAL)

    process, base_url = await _start(config, tmp_path / "server.log")
    async with CentralClient(base_url, token, timeout_s=5) as client:
        progress = Progress(mark=TOTAL // 4)
        sender = asyncio.create_task(
            _send_until_killed(client, items, progress), name="sender"
        )
        # Kill while batches keep coming, so one is likely half committed.
        await progress.passed.wait()
        process.send_signal(signal.SIGKILL)
        await process.wait()
        acked_before = await sender

    process, base_url = await _start(config, tmp_path / "server.log")
    try:
        async with CentralClient(base_url, token, timeout_s=5) as client:
            first = await client.send_batch(SITE, Stream.EVENTS, items[:25], TOTAL)
            final = await _send_all(client, items, Progress())
    finally:
        process.send_signal(signal.SIGTERM)
        await process.wait()

    store = build_store(url)
    await store.open()
    try:
        count = await store.count_records(SITE, Stream.EVENTS)
    finally:
        await store.close()
    assert 0 < acked_before < TOTAL, "the kill must land mid-stream"
    assert first.acked_seq >= acked_before, "an acknowledged record was lost"
    assert final == TOTAL
    assert count == TOTAL
