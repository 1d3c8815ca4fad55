"""Gateway: the order of the middlewares, outermost first.

1. request id: every later line, and every response, carries it;
2. problem details: from here in, any error leaves as problem+json;
3. body limit: oversize bodies are refused before anyone reads them;
4. authentication: a principal, or 401 (and brute-force accounting);
5. rate limit: per principal, 429 when spent;
6. authorization: the route's permission for the principal's role, or 403.
Validation of bodies and queries happens in the controllers, through the
models each route declares.
"""

from __future__ import annotations

from aiohttp.typedefs import Middleware

from edge_agent.gateway.authentication import authentication_middleware
from edge_agent.gateway.authorization import authorization_middleware
from edge_agent.gateway.body_limit import body_limit_middleware
from edge_agent.gateway.problem_details import problem_details_middleware
from edge_agent.gateway.rate_limit import (
    FailedAuthLimiter,
    RateLimiter,
    rate_limit_middleware,
)
from edge_agent.gateway.request_id import request_id_middleware


def middlewares(limiter: RateLimiter, failures: FailedAuthLimiter) -> list[Middleware]:
    return [
        request_id_middleware,
        problem_details_middleware,
        body_limit_middleware,
        authentication_middleware(failures),
        rate_limit_middleware(limiter),
        authorization_middleware,
    ]
