"""Gateway: the one place where errors become RFC 9457 problem+json responses.

Domain errors carry their own status and stable type; aiohttp's HTTP errors
(no such route, wrong method, body too large) get a type of their own; any
other exception is logged with its trace and answered with a plain 500 that
reveals nothing of it. Cancellation is never caught.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from edge_agent.errors import EdgeError, Unavailable
from edge_agent.request_context import request_id_var

logger = logging.getLogger(__name__)

PROBLEM_TYPE_BASE = "urn:edge-agent:problem:"
PROBLEM_CONTENT_TYPE = "application/problem+json"

# aiohttp's own HTTP errors, by status: (type slug, title).
_HTTP_PROBLEMS: dict[int, tuple[str, str]] = {
    400: ("bad-request", "Bad request"),
    404: ("route-not-found", "No such route"),
    405: ("method-not-allowed", "Method not allowed"),
    413: ("payload-too-large", "Payload too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
}


def problem_type(slug: str) -> str:
    """The URI (a URN) that names one kind of problem (RFC 9457, section 3.1.1)."""
    return PROBLEM_TYPE_BASE + slug


def problem_response(
    status: int,
    slug: str,
    title: str,
    detail: str,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> web.Response:
    """Build a problem+json response (RFC 9457, section 3.1 members)."""
    body: dict[str, Any] = {
        "type": problem_type(slug),
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    request_id = request_id_var.get()
    if request_id:
        body["request_id"] = request_id
    body.update(extensions)
    return web.Response(
        status=status,
        text=json.dumps(body, default=str),
        content_type=PROBLEM_CONTENT_TYPE,
        headers=headers,
    )


@web.middleware
async def problem_details_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    try:
        return await handler(request)
    except EdgeError as exc:
        return _from_domain_error(request, exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _from_http_error(request, exc)
    except Exception:
        logger.exception("Unhandled error serving %s %s", request.method, request.path)
        return problem_response(
            500,
            "internal-error",
            "Internal error",
            "the appliance failed to serve this request; it has been logged",
            instance=request.path,
        )


def _from_domain_error(request: web.Request, exc: EdgeError) -> web.Response:
    if isinstance(exc, Unavailable):
        logger.warning("Request %s %s failed: %s", request.method, request.path, exc)
    return problem_response(
        exc.status,
        exc.slug,
        exc.title,
        exc.detail,
        instance=request.path,
        headers=exc.headers,
        **exc.extensions,
    )


def _from_http_error(request: web.Request, exc: web.HTTPException) -> web.Response:
    slug, title = _HTTP_PROBLEMS.get(exc.status, ("http-error", exc.reason))
    headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
    return problem_response(
        exc.status,
        slug,
        title,
        exc.text or exc.reason,
        instance=request.path,
        headers=headers,
    )
