"""Gateway: give every request an id and a trace span, log it once, return the id.

A client's own ``X-Request-Id`` is kept when it looks like an id, so a camera
or the central office can follow its request through our logs; a valid W3C
``traceparent`` makes the request a span of the caller's trace.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from aiohttp import web
from aiohttp.typedefs import Handler

from edge_agent.api.keys import METRICS
from edge_agent.observability import tracing
from edge_agent.request_context import client_address_var, request_id_var, trace_var

logger = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-Id"
_ACCEPTABLE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


@web.middleware
async def request_id_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    offered = request.headers.get(REQUEST_ID_HEADER, "")
    request_id = offered if _ACCEPTABLE_ID.match(offered) else uuid.uuid4().hex
    token = request_id_var.set(request_id)
    address_token = client_address_var.set(request.remote)
    offered_trace = request.headers.get(tracing.TRACEPARENT_HEADER)
    parent = tracing.parse_traceparent(offered_trace)
    trace_token = trace_var.set(tracing.start_span(parent))
    started = time.perf_counter()
    try:
        response = await handler(request)
        response.headers[REQUEST_ID_HEADER] = request_id
        _record(request, response.status, started)
        return response
    finally:
        trace_var.reset(trace_token)
        client_address_var.reset(address_token)
        request_id_var.reset(token)


def _record(request: web.Request, status: int, started: float) -> None:
    elapsed = time.perf_counter() - started
    # The route template, not the path: ids in paths would explode the labels.
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    request.app[METRICS].observe(request.method, route, status, elapsed)

    elapsed_ms = round(elapsed * 1000, 1)
    logger.info(
        "%s %s %d %.1f ms",
        request.method,
        request.path,
        status,
        elapsed_ms,
        extra={
            "method": request.method,
            "path": request.path,
            "status": status,
            "duration_ms": elapsed_ms,
            "remote": request.remote,
        },
    )
