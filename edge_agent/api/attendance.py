"""Controllers: marks, decisions, daily report, corrections (``/v1/attendance``)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from edge_agent.api import rendering
from edge_agent.api.keys import services
from edge_agent.errors import InvalidInput
from edge_agent.gateway.context import PRINCIPAL
from edge_agent.gateway.rbac import Permission
from edge_agent.gateway.routing import endpoint
from edge_agent.gateway.validation import parse_json, parse_query
from edge_agent.models import MarkKind, Outcome, ReasonCode
from edge_agent.services.attendance import (
    MAX_MARKS_PAGE,
    MAX_PAGE_SIZE,
    AttendanceService,
    DecisionFilter,
    MarkFilter,
)

routes = web.RouteTableDef()

Day = date | Literal["today"]
DAY_HELP = "YYYY-MM-DD or 'today' (site-local)"


class AttendanceFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    day: Day | None = Field(default=None, description=DAY_HELP)
    person: str | None = Field(default=None, description="id or employee number")
    camera: str | None = None
    include_voided: bool = False
    cursor: int | None = Field(
        default=None, ge=0, description="the next_cursor of the previous page"
    )
    limit: int = Field(default=1000, ge=1, le=MAX_MARKS_PAGE)


class DecisionsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    day: Day | None = Field(default=None, description=DAY_HELP + ", capture time")
    camera: str | None = None
    person: str | None = Field(default=None, description="id or employee number")
    outcome: Outcome | None = None
    reason_code: ReasonCode | None = None
    cursor: int | None = Field(
        default=None, ge=0, description="the next_cursor of the previous page"
    )
    limit: int = Field(default=100, ge=1, le=MAX_PAGE_SIZE)


class DailyQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    day: Day = Field(default="today", description=DAY_HELP + ", the work day")


class CorrectionsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    person: str | None = Field(default=None, description="id or employee number")
    cursor: int | None = Field(default=None, ge=0)
    limit: int = Field(default=100, ge=1, le=MAX_PAGE_SIZE)


class NewCorrection(BaseModel):
    """``add``: ``person_id``, ``kind``, ``at`` (and ``camera_id``);
    ``void``: ``mark_id``. Both need a ``comment`` saying why."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["add", "void"]
    comment: str = Field(min_length=1, max_length=2000)
    person_id: str | None = Field(
        default=None, max_length=64, description="id or employee number"
    )
    kind: MarkKind | None = None
    at: AwareDatetime | None = None
    camera_id: str | None = Field(default=None, max_length=64)
    mark_id: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _fields_of_the_action(self) -> NewCorrection:
        if self.action == "add":
            missing = [
                name
                for name in ("person_id", "kind", "at")
                if getattr(self, name) is None
            ]
            if missing or self.mark_id is not None:
                raise ValueError("add needs person_id, kind and at, and no mark_id")
        elif self.mark_id is None or self.person_id or self.kind or self.at:
            raise ValueError("void needs mark_id alone")
        return self


@routes.get("/v1/attendance")
@endpoint(
    "List attendance marks in time order",
    permission=Permission.ATTENDANCE_READ,
    query=AttendanceFilter,
)
async def list_attendance(request: web.Request) -> web.Response:
    query = parse_query(request, AttendanceFilter)
    service = services(request).attendance
    day = resolve_day(service, query.day)
    filters = MarkFilter(day, query.person, query.camera, query.include_voided)
    page = await service.page_marks(filters, query.cursor, query.limit)
    return rendering.json_response(
        {
            "day": day.isoformat() if day else None,
            "attendance": [rendering.attendance_row(r) for r in page.rows],
            "next_cursor": page.next_cursor,
        }
    )


@routes.get("/v1/attendance/decisions")
@endpoint(
    "List recognition decisions, mark or not, with why",
    permission=Permission.ATTENDANCE_READ,
    query=DecisionsQuery,
)
async def list_decisions(request: web.Request) -> web.Response:
    query = parse_query(request, DecisionsQuery)
    service = services(request).attendance
    filters = DecisionFilter(
        resolve_day(service, query.day),
        query.camera,
        query.person,
        query.outcome,
        query.reason_code,
    )
    page = await service.page_decisions(filters, query.cursor, query.limit)
    return rendering.json_response(
        {
            "decisions": [rendering.decision(d, page.people) for d in page.decisions],
            "next_cursor": page.next_cursor,
        }
    )


@routes.get("/v1/attendance/daily")
@endpoint(
    "Report each person's work day: first in, last out, worked time, status",
    permission=Permission.ATTENDANCE_READ,
    query=DailyQuery,
)
async def daily_report(request: web.Request) -> web.Response:
    query = parse_query(request, DailyQuery)
    service = services(request).attendance
    day = resolve_day(service, query.day) or service.today()
    rows = await service.daily_report(day)
    return rendering.json_response(
        {
            "day": day.isoformat(),
            "timezone": service.policy.timezone.key,
            "people": [rendering.daily(r) for r in rows],
        }
    )


@routes.post("/v1/attendance/corrections")
@endpoint(
    "Correct attendance: add a missed mark or void a wrong one",
    permission=Permission.USERS_WRITE,
    body=NewCorrection,
    responses=(201,),
)
async def correct_attendance(request: web.Request) -> web.Response:
    body = await parse_json(request, NewCorrection)
    service = services(request).corrections
    actor = request[PRINCIPAL]
    if body.action == "void" and body.mark_id is not None:
        voided = await service.void_mark(body.mark_id, body.comment, actor)
        answer = {"correction": rendering.correction(voided), "mark": None}
    else:
        person, kind, at = _addition(body)
        added, new_mark = await service.add_mark(
            person, kind, at, body.camera_id, body.comment, actor
        )
        answer = {
            "correction": rendering.correction(added),
            "mark": rendering.mark(new_mark),
        }
    return rendering.json_response(answer, status=201)


@routes.get("/v1/attendance/corrections")
@endpoint(
    "List attendance corrections, oldest first",
    permission=Permission.ATTENDANCE_READ,
    query=CorrectionsQuery,
)
async def list_corrections(request: web.Request) -> web.Response:
    query = parse_query(request, CorrectionsQuery)
    page = await services(request).corrections.list_corrections(
        query.person, query.cursor, query.limit
    )
    return rendering.json_response(
        {
            "corrections": [rendering.correction(c) for c in page.corrections],
            "next_cursor": page.next_cursor,
        }
    )


def resolve_day(service: AttendanceService, value: Day | None) -> date | None:
    """The date a query's ``day`` names; ``today`` is the site-local date now."""
    return service.today() if value == "today" else value


def _addition(body: NewCorrection) -> tuple[str, MarkKind, datetime]:
    # NewCorrection's validator has refused an "add" lacking any of these;
    # this only narrows their types.
    if body.person_id is None or body.kind is None or body.at is None:
        raise InvalidInput("add needs person_id, kind and at")
    return body.person_id, body.kind, body.at
