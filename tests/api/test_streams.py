"""HTTP API: stream registration and uploaded clips, over the in-process appliance."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import cv2
import numpy as np
from synthetic_faces import encode_jpeg, face_image

from edge_agent.gateway.problem_details import PROBLEM_TYPE_BASE
from edge_agent.models import Role
from tests.api.conftest import Appliance, ApplianceFactory
from tests.support import JPEG

AVI = {"Content-Type": "video/x-msvideo"}


def face_clip(path: Path, frames: int = 20, fps: float = 10.0) -> bytes:
    """An MJPEG AVI of Alice's face, jittered frame to frame like a camera's."""
    rng = np.random.default_rng(7)
    writer = cv2.VideoWriter(
        str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (640, 480)
    )
    assert writer.isOpened()
    for _ in range(frames):
        writer.write(face_image("alice", rng=rng))
    writer.release()
    return path.read_bytes()


async def _enroll_alice(api: aiohttp.ClientSession) -> None:
    async with api.post("/v1/users", json={"employee_no": "E1", "name": "Alice"}) as r:
        person_id = (await r.json())["id"]
    image = encode_jpeg(face_image("alice"))
    async with api.post(f"/v1/users/{person_id}/faces", data=image, headers=JPEG) as r:
        assert r.status == 201


async def test_clip_frames_are_decided_in_order(
    make_appliance: ApplianceFactory, tmp_path: Path
) -> None:
    async with (
        make_appliance(server={"max_body_bytes": 4_000_000}) as appliance,
        appliance.session(await appliance.token(Role.ADMIN)) as api,
    ):
        body = await _push_face_clip(api, tmp_path)

    frames = body["frames"]
    assert body["camera_id"] == "gate"
    assert [f["position_s"] for f in frames] == [0.0, 0.5, 1.0, 1.5]
    outcomes = [[d["outcome"] for d in f["decisions"]] for f in frames]
    assert outcomes[0] == ["marked"]
    assert all(o == ["duplicate"] for o in outcomes[1:])
    assert frames[1]["captured_at"].startswith("2026-03-02T08:00:00.5")


async def _push_face_clip(api: aiohttp.ClientSession, tmp_path: Path) -> dict[str, Any]:
    await _enroll_alice(api)
    async with api.post("/v1/cameras", json={"id": "gate"}) as r:
        assert r.status == 201
    clip = face_clip(tmp_path / "gate.avi")

    async with api.post(
        "/v1/videos?camera_id=gate&sample_every_s=0.5&captured_at=2026-03-02T08:00:00Z",
        data=clip,
        headers=AVI,
    ) as r:
        assert r.status == 200, await r.text()
        body: dict[str, Any] = await r.json()
        return body


async def test_clip_upload_refusals(
    appliance: Appliance, api: aiohttp.ClientSession, tmp_path: Path
) -> None:
    async with api.post("/v1/cameras", json={"id": "gate"}) as r:
        assert r.status == 201
    clip = face_clip(tmp_path / "gate.avi", frames=3)

    async with api.post("/v1/videos?camera_id=gate", data=clip) as r:
        assert r.status == 415
    async with api.post(
        "/v1/videos?camera_id=gate", data=b"nope" * 9, headers=AVI
    ) as r:
        body = await r.json(content_type=None)
        assert body["type"] == PROBLEM_TYPE_BASE + "unsupported-video"
    async with api.post(
        "/v1/videos?camera_id=gate&sample_every_s=0", data=clip, headers=AVI
    ) as r:
        assert r.status == 422
    user = appliance.session(await appliance.token(Role.USER))
    async with (
        user,
        user.post("/v1/videos?camera_id=gate", data=clip, headers=AVI) as r,
    ):
        assert r.status == 403


async def test_stream_lifecycle_hides_credentials(
    api: aiohttp.ClientSession, tmp_path: Path
) -> None:
    async with api.post("/v1/cameras", json={"id": "door"}) as r:
        assert r.status == 201
    url = "rtsp://admin:s3cret@127.0.0.1:1/live"

    async with api.post(
        "/v1/streams", json={"camera_id": "door", "url": "ftp://x/y"}
    ) as r:
        assert r.status == 422
    async with api.post("/v1/streams", json={"camera_id": "door", "url": url}) as r:
        assert r.status == 201, await r.text()
        created = await r.json()
        location = r.headers["Location"]
    async with api.get(location) as r:
        one = await r.json()
    async with api.get("/v1/streams") as r:
        listed = (await r.json())["streams"]
    async with api.get("/v1/audit") as r:
        audit_text = await r.text()
    async with api.delete(location) as r:
        assert r.status == 204
    async with api.get(location) as r:
        assert r.status == 404

    assert created["url"] == "rtsp://admin:***@127.0.0.1:1/live"
    assert created["sample_every_s"] == 1.0
    assert one["id"] == created["id"]
    assert [s["id"] for s in listed] == [created["id"]]
    assert "s3cret" not in audit_text
