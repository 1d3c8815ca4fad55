"""Batch controller: ``POST /v1/sites/{site_id}/streams/{stream}/batches``."""

from __future__ import annotations

import re
from typing import Final

from aiohttp import web

from cloud_sync.protocol import Stream
from cloud_sync.server.errors import MissingIdempotencyKey, NotFound
from cloud_sync.server.http.auth import authorize_site
from cloud_sync.server.http.body import read_json
from cloud_sync.server.http.keys import INGEST, SETTINGS

# Visible ASCII, as any header value may carry without quoting.
_KEY_PATTERN: Final = re.compile(r"^[\x21-\x7e]{1,200}$")


async def post_batch(request: web.Request) -> web.Response:
    """Authenticate, read the body within limits, apply it, answer the ack."""
    site_id = request.match_info["site_id"]
    stream = _stream(request.match_info["stream"])
    await authorize_site(request, site_id)
    key = request.headers.get("Idempotency-Key", "")
    if not _KEY_PATTERN.match(key):
        raise MissingIdempotencyKey("send the batch's Idempotency-Key header")

    limits = request.app[SETTINGS].server
    document = await read_json(
        request, limits.max_body_bytes, limits.max_decompressed_bytes
    )
    ack = await request.app[INGEST].receive(site_id, stream, key, document)
    return web.json_response(text=ack.model_dump_json(exclude_none=True))


def _stream(name: str) -> Stream:
    try:
        return Stream(name)
    except ValueError:
        raise NotFound(f"no stream {name!r}") from None
