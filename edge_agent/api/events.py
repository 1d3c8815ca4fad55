"""Controllers: the event outbox, its sinks and their dead letters (``/v1/events``)."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from edge_agent.api import rendering
from edge_agent.api.keys import services
from edge_agent.clients.storage.deliveries import DeadLetterState
from edge_agent.gateway.context import PRINCIPAL
from edge_agent.gateway.rbac import Permission
from edge_agent.gateway.routing import endpoint
from edge_agent.gateway.validation import parse_json, parse_query
from edge_agent.models import EventType
from edge_agent.services.paging import MAX_PAGE_SIZE

routes = web.RouteTableDef()


class EventQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    after: int = Field(default=0, ge=0, description="the next_after of a page")
    type: EventType | None = Field(default=None, description="e.g. face.unknown")
    limit: int = Field(default=100, ge=1, le=MAX_PAGE_SIZE)


class DeadLetterFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sink: str | None = Field(default=None, description="e.g. webhook:vms or mqtt")
    state: DeadLetterState | None = None
    after: int = Field(default=0, ge=0, description="a seq, with sink")
    limit: int = Field(default=100, ge=1, le=MAX_PAGE_SIZE)


class RedriveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sink: str = Field(min_length=1, max_length=80, description="e.g. webhook:vms")
    seqs: list[int] | None = Field(
        default=None, max_length=10_000, description="omitted: every dead letter"
    )


@routes.get("/v1/events")
@endpoint(
    "List events of the outbox", permission=Permission.EVENTS_READ, query=EventQuery
)
async def list_events(request: web.Request) -> web.Response:
    query = parse_query(request, EventQuery)
    page = await services(request).events.list_events(
        query.after, query.type.value if query.type else None, query.limit
    )
    return rendering.json_response(
        {
            "events": [rendering.outbox_event(e) for e in page.events],
            "next_after": page.next_after,
            "head": page.head,
        }
    )


@routes.get("/v1/events/sinks")
@endpoint("Show how far each event sink has got", permission=Permission.EVENTS_READ)
async def list_sinks(request: web.Request) -> web.Response:
    sinks = await services(request).events.sinks()
    return rendering.json_response({"sinks": [rendering.sink_status(s) for s in sinks]})


@routes.get("/v1/events/dead-letters")
@endpoint(
    "List events the sinks gave up on",
    permission=Permission.EVENTS_READ,
    query=DeadLetterFilter,
)
async def list_dead_letters(request: web.Request) -> web.Response:
    query = parse_query(request, DeadLetterFilter)
    letters = await services(request).events.dead_letters(
        query.sink, query.state, query.after, query.limit
    )
    return rendering.json_response(
        {"dead_letters": [rendering.dead_letter(d) for d in letters]}
    )


@routes.post("/v1/events/dead-letters/redrive")
@endpoint(
    "Queue a sink's dead letters for another delivery",
    permission=Permission.EVENTS_WRITE,
    body=RedriveRequest,
)
async def redrive(request: web.Request) -> web.Response:
    body = await parse_json(request, RedriveRequest)
    result = await services(request).events.redrive(
        body.sink, body.seqs, request[PRINCIPAL]
    )
    return rendering.json_response(rendering.redrive(result))
