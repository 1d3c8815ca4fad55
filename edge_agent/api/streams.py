"""Controllers: video streams the appliance pulls, and short clips pushed to it.

``/v1/streams`` registers an RTSP, HTTP(S) or file source per camera; the
stream service reads it in the background. ``POST /v1/videos`` takes one
short clip, samples it and answers with the decisions on every sampled frame.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, field_validator

from edge_agent.api import rendering
from edge_agent.api.keys import SETTINGS, services
from edge_agent.api.uploads import ImageUpload, read_image
from edge_agent.errors import InvalidInput
from edge_agent.gateway.context import PRINCIPAL
from edge_agent.gateway.problem_details import problem_type
from edge_agent.gateway.rbac import Permission
from edge_agent.gateway.routing import endpoint
from edge_agent.gateway.validation import parse_json, parse_query
from edge_agent.imaging.video import (
    SampledFrame,
    UnsupportedVideo,
    sample_clip,
)
from edge_agent.models import Principal
from edge_agent.services.ingestion import FrameUpload
from edge_agent.services.streams import (
    MAX_SAMPLE_EVERY_S,
    MIN_SAMPLE_EVERY_S,
    check_source_url,
)

routes = web.RouteTableDef()

VIDEO_TYPES = ("video/mp4", "video/x-msvideo", "video/x-matroska", "video/webm")

# A clip is decided while its sender waits, frame after frame; these bound
# how long that can take and how much of it is held in memory.
CLIP_MAX_DURATION_S = 60.0
CLIP_MAX_FRAMES = 120


class NewStream(BaseModel):
    model_config = ConfigDict(extra="forbid")

    camera_id: str = Field(min_length=1, max_length=64)
    url: str = Field(
        min_length=1,
        max_length=2048,
        description="rtsp://, http://, https:// or file:// source",
    )
    sample_every_s: float = Field(
        default=1.0, ge=MIN_SAMPLE_EVERY_S, le=MAX_SAMPLE_EVERY_S
    )

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        try:
            return check_source_url(value)
        except InvalidInput as exc:
            raise ValueError(exc.detail) from exc


class VideoQuery(BaseModel):
    """Clip metadata; camera_id and captured_at may also come as headers or form."""

    model_config = ConfigDict(extra="forbid")

    camera_id: str | None = Field(default=None, max_length=64)
    sample_every_s: float = Field(
        default=1.0, ge=MIN_SAMPLE_EVERY_S, le=MAX_SAMPLE_EVERY_S
    )
    captured_at: str | None = Field(
        default=None, max_length=64, description="when the clip's first frame was"
    )


@routes.post("/v1/streams")
@endpoint(
    "Register a camera's video stream; the appliance starts reading it",
    permission=Permission.CAMERAS_WRITE,
    body=NewStream,
    responses=(201,),
)
async def register_stream(request: web.Request) -> web.Response:
    body = await parse_json(request, NewStream)
    stream = await services(request).streams.register(
        body.camera_id, body.url, body.sample_every_s, request[PRINCIPAL]
    )
    response = rendering.json_response(rendering.stream(stream), status=201)
    response.headers["Location"] = f"/v1/streams/{stream.id}"
    return response


@routes.get("/v1/streams")
@endpoint(
    "List video streams and their readers' state", permission=Permission.CAMERAS_READ
)
async def list_streams(request: web.Request) -> web.Response:
    streams = await services(request).streams.list_streams()
    return rendering.json_response({"streams": [rendering.stream(s) for s in streams]})


@routes.get("/v1/streams/{id}")
@endpoint("A video stream and its reader's state", permission=Permission.CAMERAS_READ)
async def get_stream(request: web.Request) -> web.Response:
    stream = await services(request).streams.get(request.match_info["id"])
    return rendering.json_response(rendering.stream(stream))


@routes.delete("/v1/streams/{id}")
@endpoint(
    "Stop reading a video stream and delete it",
    permission=Permission.CAMERAS_WRITE,
    responses=(204,),
)
async def remove_stream(request: web.Request) -> web.Response:
    await services(request).streams.remove(request.match_info["id"], request[PRINCIPAL])
    return web.Response(status=204)


@routes.post("/v1/videos")
@endpoint(
    "Push a short video clip; the answer lists the decisions on each sampled frame",
    permission=Permission.FRAMES_PUSH,
    query=VideoQuery,
    image_body=True,
    media_types=VIDEO_TYPES,
    max_body_bytes=None,
)
async def push_video(request: web.Request) -> web.Response:
    query = parse_query(request, VideoQuery)
    clip = await _read_clip(request)
    sender = request[PRINCIPAL]
    camera_id = _clip_camera(request, clip, sender)
    start = clip.captured_at(request)

    frames = await asyncio.to_thread(
        sample_clip,
        clip.content,
        query.sample_every_s,
        CLIP_MAX_FRAMES,
        CLIP_MAX_DURATION_S,
        max_pixels=request.app[SETTINGS].imaging.max_pixels,
    )

    # One frame after another, in clip order: the duplicate window and the
    # check-in/check-out rules depend on the order marks are decided in.
    # While the recognizer is down every frame waits out process()'s own
    # timeout, so a clip can take its frame count times that to answer;
    # submitting every frame first and then awaiting the decisions would
    # bound the wait to one timeout.
    results = [
        await _decide(request, _frame_upload(sender, camera_id, f, start), f.position_s)
        for f in frames
    ]
    return rendering.json_response({"camera_id": camera_id, "frames": results})


async def _read_clip(request: web.Request) -> ImageUpload:
    kind = request.content_type
    if not kind.startswith(("video/", "multipart/")):
        raise UnsupportedVideo(
            f"send a clip as video/* or multipart/form-data, not {kind!r}"
        )
    return await read_image(request)


def _clip_camera(request: web.Request, clip: ImageUpload, sender: Principal) -> str:
    """The clip's camera, settled before any frame is decoded."""
    return FrameUpload(sender, clip.camera_id(request), b"").resolve_camera()


def _frame_upload(
    sender: Principal, camera_id: str, frame: SampledFrame, start: datetime | None
) -> FrameUpload:
    """A sampled frame as a camera would have sent it, timed from the clip's start."""
    captured_at = None
    if start is not None:
        captured_at = start + timedelta(seconds=frame.position_s)
    return FrameUpload(sender, camera_id, frame.jpeg, captured_at)


async def _decide(
    request: web.Request, upload: FrameUpload, position_s: float
) -> dict[str, Any]:
    """One sampled frame's decisions; a refused frame is reported, not raised."""
    position = round(position_s, 3)
    try:
        outcome = await services(request).ingestion.process(upload)
    except InvalidInput as exc:
        # A clip of a doorway has blurred and dark frames; each costs only itself.
        refusal = {"type": problem_type(exc.slug), "detail": exc.detail}
        return {
            "position_s": position,
            "frame_id": None,
            "decisions": [],
            "refused": refusal,
        }
    return {"position_s": position, **rendering.frame_outcome(outcome)}
