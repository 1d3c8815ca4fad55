"""Controllers: shifts (``/v1/shifts``) and each person's (``/v1/users/{id}/shift``)."""

from __future__ import annotations

from datetime import date, time, timedelta
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from edge_agent.api import rendering
from edge_agent.api.keys import services
from edge_agent.gateway.context import PRINCIPAL
from edge_agent.gateway.rbac import Permission
from edge_agent.gateway.routing import endpoint
from edge_agent.gateway.validation import parse_json
from edge_agent.models import WEEKDAYS
from edge_agent.services.shifts import ShiftSpec

routes = web.RouteTableDef()

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class NewShift(BaseModel):
    """Times are site-local wall-clock times; ``end`` not after ``start``
    means the shift ends the next day."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=32, description="e.g. day, night")
    days: list[Weekday] = Field(min_length=1, description="the days it starts on")
    start: time = Field(description="HH:MM")
    end: time = Field(description="HH:MM")
    checkin_before_min: int = Field(default=60, ge=0, le=720)
    checkout_after_min: int = Field(default=120, ge=0, le=720)
    late_grace_min: int = Field(default=5, ge=0, le=720)
    early_exit_grace_min: int = Field(default=5, ge=0, le=720)
    half_day_hours: float = Field(default=4.0, ge=0, le=24)
    absent_hours: float = Field(default=2.0, ge=0, le=24)


class ShiftChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    shift: str | None = Field(description="a shift's name, or null for none")
    effective_from: date | None = Field(
        default=None, description="YYYY-MM-DD, site-local; default today"
    )


@routes.post("/v1/shifts")
@endpoint(
    "Create a shift", permission=Permission.USERS_WRITE, body=NewShift, responses=(201,)
)
async def create_shift(request: web.Request) -> web.Response:
    body = await parse_json(request, NewShift)
    shift = await services(request).shifts.create(_spec(body), request[PRINCIPAL])
    return rendering.json_response(rendering.shift_view(shift), status=201)


@routes.get("/v1/shifts")
@endpoint("List shifts", permission=Permission.ATTENDANCE_READ)
async def list_shifts(request: web.Request) -> web.Response:
    shifts = await services(request).shifts.list_shifts()
    return rendering.json_response(
        {"shifts": [rendering.shift_view(s) for s in shifts]}
    )


@routes.put("/v1/users/{id}/shift")
@endpoint(
    "Assign a person's shift from a date on",
    permission=Permission.USERS_WRITE,
    body=ShiftChoice,
)
async def assign_shift(request: web.Request) -> web.Response:
    body = await parse_json(request, ShiftChoice)
    assignment = await services(request).shifts.assign(
        request.match_info["id"], body.shift, body.effective_from, request[PRINCIPAL]
    )
    return rendering.json_response(rendering.assignment_view(assignment))


def _spec(body: NewShift) -> ShiftSpec:
    return ShiftSpec(
        name=body.name,
        days=[WEEKDAYS.index(day) for day in body.days],
        start=body.start,
        end=body.end,
        checkin_before=timedelta(minutes=body.checkin_before_min),
        checkout_after=timedelta(minutes=body.checkout_after_min),
        late_grace=timedelta(minutes=body.late_grace_min),
        early_exit_grace=timedelta(minutes=body.early_exit_grace_min),
        half_day_below=timedelta(hours=body.half_day_hours),
        absent_below=timedelta(hours=body.absent_hours),
    )
