"""Problem middleware: the one place where errors become RFC 9457 answers.

A ``SyncProblem`` is rendered with its own status and type; aiohttp's own
HTTP errors (no such route, wrong method, body over the size limit) get the
matching type; anything else is logged with its traceback and answered 500
without details. Cancellation is never caught (it is not an ``Exception``).
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from cloud_sync.protocol import PROBLEM_CONTENT_TYPE, Problem, ProblemType, problem_type
from cloud_sync.server.errors import (
    BodyTooLarge,
    Forbidden,
    InvalidRequest,
    NotFound,
    SyncProblem,
    Unauthorized,
)
from cloud_sync.server.http.request_id import request_id_var

logger = logging.getLogger(__name__)

# aiohttp's own errors answered as the domain error of the same status, with
# its type and title; 405 has no domain error, and aiohttp's 415 is about the
# media type only, not the encoding as well.
_HTTP_PROBLEMS: dict[int, tuple[ProblemType, str]] = {
    **{
        problem.status: (problem.slug, problem.title)
        for problem in (InvalidRequest, Unauthorized, Forbidden, NotFound, BodyTooLarge)
    },
    405: (ProblemType.METHOD_NOT_ALLOWED, "Method not allowed"),
    415: (ProblemType.UNSUPPORTED_MEDIA_TYPE, "Unsupported media type"),
}


@web.middleware
async def problem_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    try:
        return await handler(request)
    except SyncProblem as exc:
        return _from_problem(request, exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _from_http_error(request, exc)
    except Exception:
        logger.exception("Unhandled error on %s %s", request.method, request.path)
        return problem_response(
            request, 500, ProblemType.INTERNAL, "Internal error", None
        )


def problem_response(
    request: web.Request,
    status: int,
    slug: ProblemType,
    title: str,
    detail: str | None,
    headers: dict[str, str] | None = None,
    **extras: Any,
) -> web.Response:
    """A ``application/problem+json`` answer; ``extras`` become members."""
    problem = Problem(
        type=problem_type(slug),
        title=title,
        status=status,
        detail=detail,
        instance=request.path,
        request_id=request_id_var.get(),
        **extras,
    )
    return web.Response(
        status=status,
        text=problem.model_dump_json(exclude_none=True),
        content_type=PROBLEM_CONTENT_TYPE,
        headers=headers,
    )


def _from_problem(request: web.Request, exc: SyncProblem) -> web.Response:
    if exc.status >= 500:
        logger.warning("Refused %s %s: %s", request.method, request.path, exc.detail)
    else:
        logger.info("Refused %s %s: %s", request.method, request.path, exc.detail)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return problem_response(
        request, exc.status, exc.slug, exc.title, exc.detail, headers, **exc.extras
    )


def _from_http_error(request: web.Request, exc: web.HTTPException) -> web.Response:
    slug, title = _HTTP_PROBLEMS.get(
        exc.status, (ProblemType.INVALID_REQUEST, exc.reason)
    )
    headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
    return problem_response(request, exc.status, slug, title, exc.reason, headers)
