"""Gateway: refuse bodies over the route's limit before reading them whole.

A declared ``Content-Length`` over the limit is refused at once; a body sent
without one (chunked) is cut off by aiohttp once it passes the same limit.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from edge_agent.errors import PayloadTooLarge
from edge_agent.gateway.routing import route_spec


@web.middleware
async def body_limit_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    spec = route_spec(request)
    limit = request.client_max_size
    if spec is not None and spec.max_body_bytes is not None:
        limit = min(limit, spec.max_body_bytes)

    declared = request.content_length
    if declared is not None and declared > limit:
        raise PayloadTooLarge(
            f"the body of {declared} bytes exceeds this route's limit of {limit}",
            limit_bytes=limit,
        )
    # The parser reads no more than a declared length, so only a body sent
    # without one needs the lower limit set on the request that reads it.
    if declared is None and request.body_exists and limit != request.client_max_size:
        request = request.clone(client_max_size=limit)
    return await handler(request)
