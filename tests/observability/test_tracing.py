"""W3C trace context: parsing, and propagation from a camera to the recognizer."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.typedefs import Handler
from reference_recognizer import build_app
from synthetic_faces import encode_jpeg, face_image

from edge_agent.app import create_app
from edge_agent.config import load_settings
from edge_agent.models import Role
from edge_agent.observability import tracing
from edge_agent.observability.logging import JsonFormatter, RequestIdFilter
from tests import servers
from tests.api.conftest import API_KEY, Appliance, decided

CALLER = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "garbage",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
    ],
)
def test_an_invalid_traceparent_is_ignored(header: str | None) -> None:
    assert tracing.parse_traceparent(header) is None


def test_a_valid_traceparent_is_read_and_a_later_version_tolerated() -> None:
    parsed = tracing.parse_traceparent(CALLER)
    later = tracing.parse_traceparent(CALLER.replace("00-", "01-", 1) + "-more")

    assert parsed == tracing.TraceContext(
        "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "01"
    )
    assert later is not None
    assert later.trace_id == parsed.trace_id


def test_a_span_of_a_caller_keeps_its_trace_with_a_new_span_id() -> None:
    caller = tracing.parse_traceparent(CALLER)

    span = tracing.start_span(caller)
    root = tracing.start_span(None)

    assert span.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert span.span_id != "00f067aa0ba902b7"
    assert len(root.trace_id) == 32
    assert tracing.parse_traceparent(span.traceparent) == span


@pytest.fixture
async def traced_recognizer() -> AsyncIterator[tuple[str, list[str]]]:
    """The reference recognizer, noting the traceparent of every request."""
    seen: list[str] = []

    @web.middleware
    async def note(request: web.Request, handler: Handler) -> web.StreamResponse:
        seen.append(request.headers.get("traceparent", ""))
        return await handler(request)

    app = build_app(API_KEY, None)
    app.middlewares.append(note)
    async with servers.serve(app) as url:
        yield url, seen


async def test_a_frame_takes_the_cameras_trace_to_the_recognizer_and_the_logs(
    tmp_path: Path,
    traced_recognizer: tuple[str, list[str]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, seen = traced_recognizer
    settings = load_settings(
        overrides={
            "storage": {"data_dir": tmp_path / "data"},
            "recognizer": {"url": url, "api_key": API_KEY},
        }
    )
    app = create_app(settings)
    caplog.handler.addFilter(RequestIdFilter())
    caplog.set_level(logging.INFO, logger="edge_agent.gateway.request_id")

    async with servers.serve(app) as base:
        appliance = Appliance(base, app)
        async with appliance.session(await appliance.token(Role.ADMIN)) as api:
            async with api.post("/v1/cameras", json={"id": "gate"}) as r:
                assert r.status == 201
            headers = {
                "Content-Type": "image/jpeg",
                "X-Camera-Id": "gate",
                "traceparent": CALLER,
            }
            frame = encode_jpeg(face_image("x"))
            async with api.post("/v1/frames", data=frame, headers=headers) as r:
                frame_id = (await r.json())["frame_id"]
            await decided(api, frame_id)
            await asyncio.sleep(0)

    recognizer_calls = [h for h in seen if h]
    assert recognizer_calls, "the recognizer got no traceparent"
    called = tracing.parse_traceparent(recognizer_calls[-1])
    assert called is not None
    assert called.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert called.span_id != "00f067aa0ba902b7"
    lines = [
        json.loads(JsonFormatter().format(record))
        for record in caplog.records
        if "/v1/frames" in record.getMessage() and "POST" in record.getMessage()
    ]
    assert lines
    assert lines[0]["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert lines[0]["request_id"] not in (None, "-")
