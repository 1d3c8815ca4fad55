"""Odd and broken frames over HTTP: each gets its documented answer, and the
daemon stays healthy and keeps deciding good frames afterwards."""

from __future__ import annotations

import os
from collections.abc import Callable

import aiohttp
import pytest

from edge_agent.gateway.problem_details import PROBLEM_TYPE_BASE
from tests.api.conftest import decided
from tests.imaging import corpus

JPEG = {"Content-Type": "image/jpeg", "X-Camera-Id": "gate"}

# Refused before the answer: (make the body, status, problem type).
REFUSED_AT_ONCE = [
    pytest.param(lambda: b"\x00", 415, "unsupported-image", id="one-zero-byte"),
    pytest.param(lambda: os.urandom(5000), 415, "unsupported-image", id="random"),
    pytest.param(lambda: b"GIF89a" + b"\0" * 64, 415, "unsupported-image", id="gif"),
    pytest.param(
        lambda: corpus.claiming_size(corpus.face_jpeg(), 60000, 60000),
        422,
        "image-too-large",
        id="jpeg-60000x60000",
    ),
    pytest.param(
        lambda: corpus.png_claiming(60000, 60000), 422, "image-too-large", id="png-bomb"
    ),
    pytest.param(
        lambda: corpus.truncated(corpus.face_jpeg(), 0.5),
        422,
        "truncated-image",
        id="jpeg-cut-in-half",
    ),
    pytest.param(
        lambda: corpus.truncated(corpus.face_jpeg(), 0.9),
        422,
        "truncated-image",
        id="jpeg-cut-at-90pct",
    ),
]

# Accepted (the header is sound), then decided: (make the body, outcome, reason).
DECIDED_LATER = [
    pytest.param(
        lambda: corpus.truncated(corpus.face_jpeg(), 0.6, closed=True),
        "rejected",
        "part",
        id="scan-cut-eoi-appended",
    ),
    pytest.param(
        lambda: corpus.jpeg(corpus.flat_frame(5)), "rejected", "too_dark", id="black"
    ),
    pytest.param(
        lambda: corpus.jpeg(corpus.blurred_frame()),
        "rejected",
        "too_blurry",
        id="blurred",
    ),
    pytest.param(
        lambda: corpus.png(corpus.with_alpha(corpus.face_frame(320, 240))),
        "unknown",
        "",
        id="png-alpha",
    ),
    pytest.param(
        lambda: corpus.png(corpus.sixteen_bit(corpus.face_frame(200, 150))),
        "unknown",
        "",
        id="png-16-bit",
    ),
    pytest.param(
        lambda: corpus.jpeg(corpus.face_frame(), progressive=True),
        "unknown",
        "",
        id="progressive",
    ),
    pytest.param(lambda: corpus.oriented_jpeg(6), "unknown", "", id="exif-rotated"),
]


async def _register(api: aiohttp.ClientSession) -> None:
    async with api.post("/v1/cameras", json={"id": "gate"}) as response:
        assert response.status == 201


async def _still_serving(api: aiohttp.ClientSession) -> None:
    async with api.get("/healthz") as response:
        assert response.status == 200
    good = corpus.jpeg(corpus.face_frame(seed=99))
    async with api.post("/v1/frames", data=good, headers=JPEG) as response:
        assert response.status == 202
        frame_id = (await response.json())["frame_id"]
    body = await decided(api, frame_id)
    assert body["decisions"][0]["outcome"] == "unknown"


@pytest.mark.parametrize(("make", "status", "slug"), REFUSED_AT_ONCE)
async def test_broken_frames_are_refused_before_acceptance(
    api: aiohttp.ClientSession,
    make: Callable[[], bytes],
    status: int,
    slug: str,
) -> None:
    await _register(api)

    async with api.post("/v1/frames", data=make(), headers=JPEG) as response:
        problem = await response.json(content_type=None)

    assert response.status == status
    assert problem["type"] == PROBLEM_TYPE_BASE + slug
    await _still_serving(api)


@pytest.mark.parametrize(("make", "outcome", "reason"), DECIDED_LATER)
async def test_odd_frames_are_decided_with_their_reason(
    api: aiohttp.ClientSession,
    make: Callable[[], bytes],
    outcome: str,
    reason: str,
) -> None:
    await _register(api)

    async with api.post("/v1/frames", data=make(), headers=JPEG) as response:
        assert response.status == 202, await response.text()
        frame_id = (await response.json())["frame_id"]
    body = await decided(api, frame_id)

    assert [d["outcome"] for d in body["decisions"]] == [outcome]
    assert reason in body["decisions"][0]["reason"]
    await _still_serving(api)
