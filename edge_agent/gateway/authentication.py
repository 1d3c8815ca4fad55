"""Gateway: who is calling. Resolves credentials to a principal, or answers 401.

Credentials come as ``Authorization: Bearer <token or key>`` (RFC 6750,
section 2.1) or ``X-API-Key: <key>``, the header many cameras can be set to
send. Failures count against the caller's address; past the limit, every
credential from that address is refused for a while, so neither a password
nor a key can be brute-forced from the LAN. Public routes skip all this,
except login routes, whose failures count too.
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from edge_agent.api.keys import services
from edge_agent.errors import RateLimited, Unauthenticated
from edge_agent.gateway.context import PRINCIPAL
from edge_agent.gateway.rate_limit import FailedAuthLimiter
from edge_agent.gateway.routing import route_spec
from edge_agent.models import Principal

logger = logging.getLogger(__name__)


def authentication_middleware(failures: FailedAuthLimiter) -> Middleware:
    @web.middleware
    async def authenticate(
        request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        spec = route_spec(request)
        if spec is None or not spec.checks_credentials:
            return await handler(request)

        address = request.remote
        _refuse_if_blocked(failures, address)
        try:
            if not spec.public:
                request[PRINCIPAL] = await _principal(request)
            return await handler(request)
        except Unauthenticated:
            # Only a wrong guess counts; a request with no credential at all
            # (a browser, a misconfigured camera) guesses nothing.
            if spec.login or _credential(request) is not None:
                failures.record_failure(address)
                logger.info(
                    "Authentication failed from %s on %s", address, request.path
                )
            raise

    return authenticate


def _refuse_if_blocked(failures: FailedAuthLimiter, address: str | None) -> None:
    retry_after = failures.retry_after(address)
    if retry_after is not None:
        raise RateLimited(
            "too many failed authentication attempts from this address",
            retry_after_s=retry_after,
        )


async def _principal(request: web.Request) -> Principal:
    credential = _credential(request)
    if credential is None:
        raise Unauthenticated(
            "send a bearer token or an API key", error="invalid_request"
        )
    return await services(request).auth.authenticate(credential)


def _credential(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    key = request.headers.get("X-API-Key", "").strip()
    return key or None
