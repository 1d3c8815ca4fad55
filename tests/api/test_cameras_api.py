"""Camera fleet over HTTP: register, read, change, enable, disable, remove,
status, and the refusal of frames from disabled and removed cameras."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from synthetic_faces import encode_jpeg, face_image

from edge_agent.gateway.problem_details import PROBLEM_TYPE_BASE
from edge_agent.models import Role
from tests.api.conftest import Appliance
from tests.support import JPEG

NIGHT = {"days": [4], "start": "22:00", "end": "06:00"}


async def _json(response: aiohttp.ClientResponse) -> Any:
    return await response.json(content_type=None)


async def _register(api: aiohttp.ClientSession, **fields: Any) -> dict[str, Any]:
    async with api.post("/v1/cameras", json={"id": "gate", **fields}) as r:
        assert r.status == 201, await r.text()
        body: dict[str, Any] = await r.json()
    return body


async def test_a_camera_is_registered_read_and_changed(
    api: aiohttp.ClientSession,
) -> None:
    created = await _register(
        api,
        name="Gate",
        direction="entry",
        location="North",
        expected_interval_s=5,
        match_threshold=0.9,
        probe_url="rtsp://admin:secret@10.0.0.9/live",
        schedule=[NIGHT],
    )
    assert created["probe_url"] == "rtsp://admin:***@10.0.0.9/live"
    assert created["schedule"] == [NIGHT]

    async with api.patch(
        "/v1/cameras/gate", json={"location": None, "schedule": [], "name": "Main"}
    ) as r:
        assert r.status == 200
        changed = await r.json()
    async with api.get("/v1/cameras/gate") as r:
        read = await r.json()

    assert read == changed
    assert (read["name"], read["location"], read["schedule"]) == ("Main", None, [])
    assert read["match_threshold"] == 0.9
    assert read["direction"] == "entry"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        pytest.param({"match_threshold": 2}, 422, id="threshold"),
        pytest.param({"name": None}, 422, id="clear-name"),
        pytest.param({"probe_url": "ftp://cam/x"}, 422, id="probe-scheme"),
        pytest.param(
            {"schedule": [{"days": [9], "start": "08:00", "end": "09:00"}]},
            422,
            id="schedule-day",
        ),
        pytest.param({"colour": "red"}, 422, id="unknown-field"),
    ],
)
async def test_bad_changes_are_problems(
    api: aiohttp.ClientSession, body: dict[str, Any], status: int
) -> None:
    await _register(api)
    async with api.patch("/v1/cameras/gate", json=body) as r:
        assert r.status == status
        assert r.content_type == "application/problem+json"


async def test_unknown_cameras_are_not_found(api: aiohttp.ClientSession) -> None:
    for method, path in (
        ("GET", "/v1/cameras/nope"),
        ("PATCH", "/v1/cameras/nope"),
        ("DELETE", "/v1/cameras/nope"),
        ("POST", "/v1/cameras/nope/enable"),
    ):
        body: dict[str, Any] | None = {} if method == "PATCH" else None
        async with api.request(method, path, json=body) as r:
            assert r.status == 404, (method, path)


async def test_frames_of_a_disabled_camera_are_refused_until_enabled(
    appliance: Appliance, api: aiohttp.ClientSession
) -> None:
    key = (await _register(api))["api_key"]
    frame = encode_jpeg(face_image("x"))
    async with api.post("/v1/cameras/gate/disable") as r:
        assert r.status == 200
        assert (await r.json())["enabled"] is False

    async with appliance.session(key) as camera:
        async with camera.post("/v1/frames", data=frame, headers=JPEG) as r:
            problem = await _json(r)
            assert r.status == 409
        async with api.post("/v1/cameras/gate/enable") as r:
            assert r.status == 200
        async with camera.post("/v1/frames", data=frame, headers=JPEG) as r:
            assert r.status == 202

    assert problem["type"] == PROBLEM_TYPE_BASE + "camera-disabled"
    assert "disabled" in problem["detail"]


async def test_a_removed_camera_is_hidden_refused_and_can_come_back(
    appliance: Appliance, api: aiohttp.ClientSession
) -> None:
    key = (await _register(api))["api_key"]
    frame = encode_jpeg(face_image("x"))
    async with api.delete("/v1/cameras/gate") as r:
        assert r.status == 200

    async with api.get("/v1/cameras") as r:
        assert (await r.json())["cameras"] == []
    async with api.get("/v1/cameras/gate") as r:
        assert r.status == 404
    async with (
        appliance.session(key) as camera,
        camera.post("/v1/frames", data=frame, headers=JPEG) as r,
    ):
        assert r.status == 401  # its keys were revoked
    headers = {**JPEG, "X-Camera-Id": "gate"}
    async with api.post("/v1/frames", data=frame, headers=headers) as r:
        assert r.status == 409
        assert (await _json(r))["type"] == PROBLEM_TYPE_BASE + "camera-removed"

    new_key = (await _register(api, direction="exit"))["api_key"]
    async with (
        appliance.session(new_key) as camera,
        camera.post("/v1/frames", data=frame, headers=JPEG) as r,
    ):
        assert r.status == 202


async def test_status_lists_every_camera_state(
    appliance: Appliance, api: aiohttp.ClientSession
) -> None:
    await _register(api, location="North")
    async with api.post("/v1/cameras", json={"id": "yard"}) as r:
        assert r.status == 201
    async with api.post("/v1/cameras/yard/disable") as r:
        assert r.status == 200

    async with api.get("/v1/cameras/status") as r:
        assert r.status == 200
        before = {c["camera_id"]: c for c in (await r.json())["cameras"]}
    assert before["gate"]["state"] is None
    assert before["gate"]["location"] == "North"
    assert before["yard"]["enabled"] is False


async def test_reading_cameras_needs_a_role_that_may(appliance: Appliance) -> None:
    token = await appliance.token(Role.USER)
    async with (
        appliance.session(token) as user,
        user.post("/v1/cameras/gate/disable") as r,
    ):
        assert r.status == 403
