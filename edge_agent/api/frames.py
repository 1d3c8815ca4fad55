"""Controllers: frames pushed by cameras and kiosks.

``POST /v1/Image/upload`` is the path of the first API draft; clients built
against it still work, as an alias of ``POST /v1/frames``.
"""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from edge_agent.api import rendering
from edge_agent.api.keys import services
from edge_agent.api.uploads import read_image
from edge_agent.errors import InvalidInput
from edge_agent.gateway.context import PRINCIPAL
from edge_agent.gateway.rbac import Permission
from edge_agent.gateway.routing import endpoint
from edge_agent.gateway.validation import parse_query
from edge_agent.services.ingestion import FrameUpload

routes = web.RouteTableDef()


class FrameQuery(BaseModel):
    """Frame metadata may also come in the query string (or headers, or form)."""

    model_config = ConfigDict(extra="forbid")

    camera_id: str | None = Field(default=None, max_length=64)
    captured_at: str | None = Field(default=None, max_length=64)
    seq: int | None = Field(default=None, ge=0)


async def _read_frame(request: web.Request) -> FrameUpload:
    # The query is only checked here: each value is read below from the form,
    # the headers or the query, in that order, like the other image routes.
    parse_query(request, FrameQuery)
    upload = await read_image(request)

    captured_at = upload.captured_at(request)
    seq = upload.value(request, "seq", "X-Frame-Seq")
    if seq is not None and not seq.isdigit():
        raise InvalidInput(f"seq {seq!r} is not a non-negative integer")

    return FrameUpload(
        request[PRINCIPAL],
        upload.camera_id(request),
        upload.content,
        captured_at,
        int(seq) if seq is not None else None,
    )


@routes.post("/v1/frames")
@routes.post("/v1/Image/upload")
@endpoint(
    "Push a camera frame; it is accepted durably and decided later",
    permission=Permission.FRAMES_PUSH,
    query=FrameQuery,
    image_body=True,
    max_body_bytes=None,
    responses=(202, 200),
)
async def push_frame(request: web.Request) -> web.Response:
    """202 once the frame is durable; a repeat of recent bytes answers 200
    with the first frame's id (a camera retrying after a lost answer)."""
    frame = await _read_frame(request)
    accepted = await services(request).ingestion.submit(frame)
    body = {
        **rendering.frame_record(accepted.record),
        "duplicate_of": accepted.duplicate_of,
    }
    status = 200 if accepted.duplicate_of else 202
    response = rendering.json_response(body, status=status)
    response.headers["Location"] = body["status_url"]
    return response


@routes.get("/v1/frames/{id}")
@endpoint("A frame's state and decisions", permission=Permission.FRAMES_PUSH)
async def frame_status(request: web.Request) -> web.Response:
    outcome = await services(request).ingestion.status(
        request.match_info["id"], request[PRINCIPAL]
    )
    return rendering.json_response(rendering.frame_outcome(outcome))


@routes.post("/v1/attendance/mark")
@endpoint(
    "Kiosk: push a frame and wait for its attendance decision",
    permission=Permission.FRAMES_PUSH,
    query=FrameQuery,
    image_body=True,
    max_body_bytes=None,
    responses=(200, 202),
)
async def mark_attendance(request: web.Request) -> web.Response:
    """A kiosk's request: the answer is the decision on its own frame."""
    frame = await _read_frame(request)
    outcome = await services(request).ingestion.process(frame)
    status = 200 if outcome.record.state == "decided" else 202
    return rendering.json_response(rendering.frame_outcome(outcome), status=status)
