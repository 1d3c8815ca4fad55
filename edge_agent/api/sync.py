"""Controllers: the sync of this site's streams to the central server (``/v1/sync``)."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from cloud_sync.protocol import Stream
from edge_agent.api import rendering
from edge_agent.api.keys import services
from edge_agent.gateway.context import PRINCIPAL
from edge_agent.gateway.rbac import Permission
from edge_agent.gateway.routing import endpoint
from edge_agent.gateway.validation import parse_json, parse_query

routes = web.RouteTableDef()


class DeadLetterFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stream: Stream | None = None
    limit: int = Field(default=100, ge=1, le=1000)


class SyncRedrive(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seqs: list[int] | None = Field(
        default=None, max_length=10_000, description="omitted: every dead letter"
    )


@routes.get("/v1/sync/status")
@endpoint(
    "Each stream's head, acknowledged mark, lag and last error",
    permission=Permission.SYNC_READ,
)
async def sync_status(request: web.Request) -> web.Response:
    sync = services(request).sync
    streams = await sync.status()
    return rendering.json_response(rendering.sync_overview(sync.enabled, streams))


@routes.post("/v1/sync/now")
@endpoint(
    "Start a sync round on every stream now, cutting short any backoff",
    permission=Permission.SYNC_WRITE,
    responses=(202,),
)
async def sync_now(request: web.Request) -> web.Response:
    sync = services(request).sync
    sync.trigger()
    return rendering.json_response({"enabled": sync.enabled}, status=202)


@routes.get("/v1/sync/dead-letters")
@endpoint(
    "Records the central server set aside",
    permission=Permission.SYNC_READ,
    query=DeadLetterFilter,
)
async def sync_dead_letters(request: web.Request) -> web.Response:
    query = parse_query(request, DeadLetterFilter)
    letters = await services(request).sync.dead_letters(
        query.stream.value if query.stream else None, query.limit
    )
    body = {"dead_letters": [rendering.sync_dead_letter(d) for d in letters]}
    return rendering.json_response(body)


@routes.post("/v1/sync/streams/{stream}/resume")
@endpoint("Let a stopped stream go on", permission=Permission.SYNC_WRITE)
async def resume_stream(request: web.Request) -> web.Response:
    stream = request.match_info["stream"]
    await services(request).sync.resume(stream, request[PRINCIPAL])
    return rendering.json_response({"stream": stream, "resumed": True})


@routes.post("/v1/sync/streams/{stream}/redrive")
@endpoint(
    "Send a stream's dead letters again",
    permission=Permission.SYNC_WRITE,
    body=SyncRedrive,
)
async def redrive_stream(request: web.Request) -> web.Response:
    stream = request.match_info["stream"]
    body = await parse_json(request, SyncRedrive)
    queued = await services(request).sync.redrive(stream, body.seqs, request[PRINCIPAL])
    return rendering.json_response({"stream": stream, "queued": queued})
