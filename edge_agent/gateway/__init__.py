"""Gateway: the chain of middlewares every request passes before a controller.

Order matters: the request id comes first so that every later line carries
it; errors become problem+json inside it, so even a refusal has an id.
Authentication, rate limiting and authorization join the chain after the
error middleware, so their refusals are problem+json too.
"""

from __future__ import annotations

from aiohttp.typedefs import Middleware

from edge_agent.gateway.problem_details import problem_details_middleware
from edge_agent.gateway.request_id import request_id_middleware


def middlewares() -> list[Middleware]:
    return [request_id_middleware, problem_details_middleware]
