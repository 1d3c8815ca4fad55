"""Bounded request bodies: read at most so many bytes, inflate at most so many.

The server reads bodies raw (aiohttp's own decompression is off) so that
both limits hold: ``max_body_bytes`` on the wire, and ``max_decompressed_bytes``
after gzip, checked while inflating so a small bomb never grows in memory
beyond the limit.
"""

from __future__ import annotations

import asyncio
import json
import zlib
from typing import Any, Final, NoReturn

from aiohttp import web

from cloud_sync.server.errors import (
    BodyTooLarge,
    InvalidJson,
    InvalidRequest,
    UnsupportedMediaType,
)

_CHUNK: Final = 64 * 1024
# RFC 9110 section 8.4.1: "x-gzip" is an alias of "gzip".
_GZIP: Final = ("gzip", "x-gzip")


async def read_json(request: web.Request, max_body: int, max_inflated: int) -> Any:
    """The JSON value of the request body, within both size limits."""
    if request.content_type != "application/json":
        raise UnsupportedMediaType("the body must be application/json")
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in (*_GZIP, "identity"):
        raise UnsupportedMediaType(f"Content-Encoding {encoding!r} is not supported")

    body = await _read_body(request, max_body)
    return await asyncio.to_thread(_decode, body, encoding in _GZIP, max_inflated)


async def _read_body(request: web.Request, limit: int) -> bytes:
    declared = request.content_length
    if declared is not None and declared > limit:
        raise BodyTooLarge(f"body of {declared} bytes; at most {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"body over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _decode(body: bytes, gzipped: bool, max_inflated: int) -> Any:
    """Inflate (when gzipped) and parse; blocking, so it runs off the loop."""
    data = inflate(body, max_inflated) if gzipped else body
    if len(data) > max_inflated:
        raise BodyTooLarge(f"body over {max_inflated} bytes")
    try:
        return json.loads(data, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        # ValueError covers bad JSON, bad UTF-8 and NaN; RecursionError, nesting
        # deeper than the parser can follow.
        raise InvalidJson(f"body is not JSON: {str(exc)[:200]}") from exc


def inflate(body: bytes, limit: int) -> bytes:
    """The bytes of one gzip member, refused as soon as they pass ``limit``."""
    inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise InvalidRequest(f"body is not valid gzip: {exc}") from exc
    if len(data) > limit or inflater.unconsumed_tail:
        raise BodyTooLarge(f"body inflates beyond {limit} bytes")
    if not inflater.eof:
        raise InvalidRequest("gzip body is truncated")
    if inflater.unused_data:
        raise InvalidRequest("gzip body has data after its end")
    return data


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")
