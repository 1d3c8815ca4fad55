"""Controllers: reading the audit log (``GET /v1/audit/logs``)."""

from __future__ import annotations

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from edge_agent.api import rendering
from edge_agent.api.keys import services
from edge_agent.gateway.rbac import Permission
from edge_agent.gateway.routing import endpoint
from edge_agent.gateway.validation import parse_query
from edge_agent.services.audit import MAX_PAGE_SIZE, AuditFilter

routes = web.RouteTableDef()


class AuditQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    actor: str | None = Field(default=None, description="e.g. account:alice")
    action: str | None = Field(default=None, description="e.g. auth.login")
    target: str | None = None
    outcome: str | None = Field(default=None, description="success, failure, ...")
    since: AwareDatetime | None = Field(default=None, description="inclusive")
    until: AwareDatetime | None = Field(default=None, description="exclusive")
    cursor: int | None = Field(
        default=None, ge=0, description="the next_cursor of the previous page"
    )
    limit: int = Field(default=100, ge=1, le=MAX_PAGE_SIZE)


@routes.get("/v1/audit/logs")
@endpoint("List audit log entries", permission=Permission.AUDIT_READ, query=AuditQuery)
async def list_audit_logs(request: web.Request) -> web.Response:
    query = parse_query(request, AuditQuery)
    page = await services(request).audit.list_entries(
        _filters(query), query.cursor, query.limit
    )
    return rendering.json_response(
        {
            "entries": [rendering.audit_entry(e) for e in page.entries],
            "next_cursor": page.next_cursor,
        }
    )


def _filters(query: AuditQuery) -> AuditFilter:
    return AuditFilter(
        actor=query.actor,
        action=query.action,
        target=query.target,
        outcome=query.outcome,
        since=query.since,
        until=query.until,
    )
