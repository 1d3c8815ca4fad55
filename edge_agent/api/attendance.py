"""Controllers: reading attendance marks (``GET /v1/attendance``)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from edge_agent.api import rendering
from edge_agent.api.keys import services
from edge_agent.gateway.rbac import Permission
from edge_agent.gateway.routing import endpoint
from edge_agent.gateway.validation import parse_query

routes = web.RouteTableDef()


class AttendanceFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    day: date | Literal["today"] | None = Field(
        default=None, description="YYYY-MM-DD or 'today' (site-local)"
    )
    person: str | None = None
    camera: str | None = None
    limit: int = Field(default=1000, ge=1, le=10000)


@routes.get("/v1/attendance")
@endpoint(
    "List attendance marks in time order",
    permission=Permission.ATTENDANCE_READ,
    query=AttendanceFilter,
)
async def list_attendance(request: web.Request) -> web.Response:
    query = parse_query(request, AttendanceFilter)
    service = services(request).attendance
    day = service.today() if query.day == "today" else query.day
    rows = await service.list_marks(day, query.person, query.camera, query.limit)
    return rendering.json_response(
        {
            "day": day.isoformat() if day else None,
            "attendance": [rendering.attendance_row(r) for r in rows],
        }
    )
