"""Two central servers on one PostgreSQL database, fed the same batches at once."""

from __future__ import annotations

import asyncio

from cloud_sync.client import CentralClient
from cloud_sync.protocol import Record, Stream
from cloud_sync.server.http.app import CentralServer
from cloud_sync.server.http.keys import STORE
from cloud_sync.server.tokens import new_token
from tests.cloud_sync.conftest import central_settings, start_central
from tests.cloud_sync.helpers import audit_chain, audit_records, deliver, records

SITE = "site-a"
TOTAL = 600


async def _deliver(client: CentralClient, stream: Stream, items: list[Record]) -> int:
    """Send every batch in order, with a pause of up to 1 ms after each ack."""
    return await deliver(
        client,
        SITE,
        stream,
        items,
        max_records=40,
        site_head=len(items),
        pause_s=0.001,
    )


async def test_two_replicas_store_each_record_once(pg_url: str) -> None:
    admin = new_token()
    first, token = await start_central(central_settings(pg_url, admin))
    second = CentralServer(central_settings(pg_url, admin))
    await second.start()
    events = records(SITE, Stream.EVENTS, 1, TOTAL)
    chain = audit_records(SITE, audit_chain(200))
    try:
        clients = [
            CentralClient(f"http://127.0.0.1:{server.port}", token)
            for server in (first, second, first, second)
        ]
        results = await asyncio.gather(
            *(_deliver(c, Stream.EVENTS, events) for c in clients),
            *(_deliver(c, Stream.AUDIT, chain) for c in clients),
        )
        for client in clients:
            await client.aclose()

        store = first.app[STORE]
        assert results == [TOTAL] * 4 + [200] * 4
        assert await store.count_records(SITE, Stream.EVENTS) == TOTAL
        assert await store.count_records(SITE, Stream.AUDIT) == 200
        heads = {h.stream: h for h in await store.stream_heads(SITE)}
        assert heads[Stream.EVENTS].acked_seq == TOTAL
        assert heads[Stream.AUDIT].chain_state.value == "ok"
    finally:
        await second.stop()
        await first.stop()
