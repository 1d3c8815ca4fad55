"""Request id middleware: one id per request, in the answer and in every log line."""

from __future__ import annotations

import contextvars
import logging
import re
import time
import uuid
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Handler

logger = logging.getLogger(__name__)

REQUEST_ID_HEADER: Final = "X-Request-Id"
_ACCEPTED_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar(
    "cloud_sync_request_id", default="-"
)


class RequestIdFilter(logging.Filter):
    """Gives every log record the ``request_id`` of the request it belongs to."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


@web.middleware
async def request_id_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    """Take the caller's id when it is sane, else make one; log the request."""
    offered = request.headers.get(REQUEST_ID_HEADER, "")
    request_id = offered if _ACCEPTED_ID.match(offered) else uuid.uuid4().hex
    token = request_id_var.set(request_id)
    started = time.perf_counter()
    try:
        response = await handler(request)
        response.headers[REQUEST_ID_HEADER] = request_id
        logger.info(
            "%s %s -> %d in %.1f ms",
            request.method,
            request.path,
            response.status,
            (time.perf_counter() - started) * 1000,
        )
        return response
    finally:
        request_id_var.reset(token)
