"""Bearer authentication of sites (their own token) and of the office (admin token)."""

from __future__ import annotations

from aiohttp import web

from cloud_sync.server.errors import Forbidden, Unauthorized
from cloud_sync.server.http.keys import SETTINGS, SITES
from cloud_sync.server.tokens import matches


def bearer_token(request: web.Request) -> str:
    """The request's bearer token (RFC 6750 section 2.1), or 401."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("a bearer token is required")
    return token.strip()


async def authorize_site(request: web.Request, site_id: str) -> None:
    """Let the request through only with ``site_id``'s own token."""
    owner = await request.app[SITES].authenticate(bearer_token(request))
    if owner is None:
        raise Unauthorized("the token is not valid")
    if owner != site_id:
        # The owner is named in the log line only, never the token.
        raise Forbidden(f"this token may not write for site {site_id}")


def authorize_admin(request: web.Request) -> None:
    """Let the request through only with the office's admin token."""
    expected = request.app[SETTINGS].admin.token_sha256
    if not expected:
        raise Forbidden("the office API is off: no admin token is configured")
    if not matches(bearer_token(request), expected):
        raise Unauthorized("the token is not valid")
