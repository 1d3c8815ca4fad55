"""Gateway: may this principal use this route? Refusals are audited, then 403."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from edge_agent.api.keys import services
from edge_agent.errors import Forbidden
from edge_agent.gateway.context import PRINCIPAL
from edge_agent.gateway.rbac import allows
from edge_agent.gateway.routing import route_spec
from edge_agent.services.audit import AuditAction


@web.middleware
async def authorization_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    spec = route_spec(request)
    if spec is None or spec.permission is None:
        return await handler(request)

    principal = request[PRINCIPAL]
    if not allows(principal.role, spec.permission):
        await services(request).audit.record(
            principal,
            AuditAction.ACCESS_DENIED,
            target=f"{request.method} {request.path}",
            outcome="denied",
            details={"permission": spec.permission.value},
        )
        raise Forbidden(
            f"role {principal.role.value} lacks permission {spec.permission.value}"
        )
    return await handler(request)
