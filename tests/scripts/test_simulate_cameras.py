"""Tests for the camera simulator against a recording loopback server."""

from __future__ import annotations

import socket
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import pytest
from aiohttp import web
from simulate_cameras import (
    GARBAGE,
    FrameResult,
    SimulationConfig,
    describe_result,
    run_simulation,
)

if TYPE_CHECKING:
    from .conftest import Serve

IDENTITIES = ["alice", "bob"]


@dataclass
class Received:
    """One request as the test server saw it."""

    headers: dict[str, str]
    body: bytes


@dataclass
class FrameSink:
    """A stand-in for the appliance's frame API that records every request."""

    url: str
    received: list[Received] = field(default_factory=list)
    status: int = 200
    extra_headers: dict[str, str] = field(default_factory=dict)


SINK = web.AppKey("sink", FrameSink)


async def _accept_frame(request: web.Request) -> web.Response:
    sink = request.app[SINK]
    sink.received.append(Received(dict(request.headers), await request.read()))
    camera_id = request.headers.get("X-Camera-Id", "")
    if sink.status != 200:
        problem = {"type": "about:blank", "title": "Busy", "status": sink.status}
        return web.json_response(
            problem,
            status=sink.status,
            headers=sink.extra_headers,
            content_type="application/problem+json",
        )

    decision = {"outcome": "unknown", "reason": "test", "person": None}
    body = {"frame_id": "f", "camera_id": camera_id, "decisions": [decision]}
    return web.json_response(body)


@pytest.fixture
async def sink(serve: Serve) -> AsyncIterator[FrameSink]:
    """A frame endpoint on a loopback port that records what it accepts."""
    app = web.Application()
    app.router.add_post("/v1/frames", _accept_frame)
    recorder = FrameSink(url="")
    app[SINK] = recorder
    async with serve(app) as url:
        recorder.url = url
        yield recorder


def _config(url: str, **overrides: Any) -> SimulationConfig:
    settings: dict[str, Any] = {
        "url": url,
        "camera_ids": ["cam-1", "cam-2"],
        "fps": 10.0,
        "duration_s": 1.0,
        "identities": IDENTITIES,
    }
    return SimulationConfig(**(settings | overrides))


def _is_jpeg(data: bytes) -> bool:
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    return data[:2] == b"\xff\xd8" and image is not None


async def test_frames_carry_camera_headers_and_jpeg_bodies(sink: FrameSink) -> None:
    results = await run_simulation(_config(sink.url, duration_s=0.5))

    assert sink.received
    assert len(results) == len(sink.received)
    for request in sink.received:
        assert request.headers["X-Camera-Id"] in {"cam-1", "cam-2"}
        assert request.headers["Content-Type"] == "image/jpeg"
        captured = request.headers["X-Captured-At"]
        assert captured.endswith("Z")
        assert datetime.fromisoformat(captured).utcoffset() is not None
        assert _is_jpeg(request.body)
    assert {r.status for r in results} == {200}
    assert all(r.body["decisions"][0]["outcome"] == "unknown" for r in results)


async def test_runs_at_the_requested_rate_and_stops(sink: FrameSink) -> None:
    started = time.monotonic()
    results = await run_simulation(_config(sink.url, fps=10.0, duration_s=1.5))
    elapsed = time.monotonic() - started

    per_camera = Counter(result.camera_id for result in results)
    assert elapsed < 2.5
    assert set(per_camera) == {"cam-1", "cam-2"}
    assert all(11 <= count <= 19 for count in per_camera.values()), per_camera
    assert len(sink.received) == len(results)


async def test_garbage_frames_are_not_images(sink: FrameSink) -> None:
    results = await run_simulation(
        _config(sink.url, garbage_ratio=1.0, stranger_ratio=0.0, duration_s=0.3)
    )

    assert results
    assert {result.identity for result in results} == {GARBAGE}
    assert not any(_is_jpeg(request.body) for request in sink.received)


@pytest.mark.parametrize(("ratio", "strangers"), [(0.0, False), (1.0, True)])
async def test_frames_show_enrolled_people_or_strangers(
    sink: FrameSink, ratio: float, strangers: bool
) -> None:
    results = await run_simulation(
        _config(sink.url, stranger_ratio=ratio, duration_s=0.3)
    )

    assert results
    for result in results:
        assert result.identity.startswith("stranger-") is strangers
        assert strangers or result.identity in IDENTITIES


async def test_every_result_reaches_the_callback(sink: FrameSink) -> None:
    seen: list[FrameResult] = []

    results = await run_simulation(_config(sink.url, duration_s=0.3), seen.append)

    assert seen == results


async def test_retry_after_holds_a_camera_back(sink: FrameSink) -> None:
    sink.status = 503
    sink.extra_headers = {"Retry-After": "5"}

    results = await run_simulation(
        _config(sink.url, camera_ids=["cam-1"], fps=20.0, duration_s=0.5)
    )

    assert [result.status for result in results] == [503]
    assert results[0].body["title"] == "Busy"
    assert "503" in describe_result(results[0])


@pytest.fixture
def refusing_url() -> Iterator[str]:
    """A loopback URL whose port refuses every connection."""
    # A bound socket that never listens refuses connections, and holding it
    # keeps any other process from taking the port during the test.
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{bound.getsockname()[1]}"


async def test_refused_connections_are_status_zero(refusing_url: str) -> None:
    results = await run_simulation(
        _config(refusing_url, camera_ids=["cam-1"], fps=5.0, duration_s=0.5)
    )

    assert results
    assert {result.status for result in results} == {0}
    assert all("error" in result.body for result in results)
    assert "ClientConnectorError" in describe_result(results[0])


@pytest.mark.parametrize(
    "overrides",
    [
        {"camera_ids": []},
        {"fps": 0.0},
        {"stranger_ratio": 1.5},
        {"stranger_ratio": 0.6, "garbage_ratio": 0.6},
    ],
)
def test_bad_configs_are_rejected(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"must|needed"):
        _config("http://127.0.0.1:1", **overrides)


def test_results_describe_marks() -> None:
    decision = {
        "outcome": "marked",
        "person": {"id": "p1", "employee_no": "E7", "name": "Alice"},
        "similarity": 0.97,
        "mark": {"id": 4, "kind": "check_in", "marked_at": "2025-01-01T08:00:00Z"},
    }
    result = FrameResult("cam-1", "alice", 200, {"decisions": [decision]})

    line = describe_result(result)

    assert "marked Alice (0.970) check_in #4" in line
