"""HTTP API: resources, validation and problem+json for every kind of refusal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from local_services import free_port
from synthetic_faces import encode_jpeg, face_image, faceless_image

from edge_agent.api.keys import SERVICES
from edge_agent.app import create_app
from edge_agent.clock import from_text
from edge_agent.config import load_settings
from edge_agent.gateway.problem_details import PROBLEM_TYPE_BASE
from edge_agent.models import Role, local_admin
from tests import servers
from tests.api.conftest import decided
from tests.support import JPEG


async def _problem(response: aiohttp.ClientResponse, status: int, slug: str) -> Any:
    assert response.status == status, await response.text()
    assert response.content_type == "application/problem+json"
    body = await response.json(content_type=None)
    assert body["type"] == PROBLEM_TYPE_BASE + slug
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    assert body["request_id"] == response.headers["X-Request-Id"]
    return body


async def _person(api: aiohttp.ClientSession, employee_no: str = "E1") -> str:
    async with api.post(
        "/v1/users", json={"employee_no": employee_no, "name": "Alice"}
    ) as response:
        assert response.status == 201
        person_id: str = (await response.json())["id"]
        return person_id


async def test_person_lifecycle_over_http(api: aiohttp.ClientSession) -> None:
    person_id = await _person(api)
    image = encode_jpeg(face_image("alice"))

    async with api.post(f"/v1/users/{person_id}/faces", data=image, headers=JPEG) as r:
        assert r.status == 201
        face = await r.json()
    async with api.get("/v1/users/E1") as r:
        by_employee_no = await r.json()
    async with api.get(f"/v1/users/{person_id}/faces") as r:
        faces = (await r.json())["faces"]
    async with api.get("/v1/users") as r:
        listed = (await r.json())["users"]

    assert by_employee_no["id"] == person_id
    assert [f["id"] for f in faces] == [face["id"]]
    assert [p["employee_no"] for p in listed] == ["E1"]


async def test_multipart_enrollment_and_alias_upload(
    api: aiohttp.ClientSession,
) -> None:
    person_id = await _person(api)
    form = aiohttp.FormData()
    form.add_field("file", encode_jpeg(face_image("alice")), filename="a.jpg")
    async with api.post(f"/v1/users/{person_id}/faces", data=form) as r:
        assert r.status == 201
    async with api.post("/v1/cameras", json={"id": "gate"}) as r:
        assert r.status == 201

    rng = np.random.default_rng(1)
    captured = datetime.now(UTC) - timedelta(seconds=5)
    upload = aiohttp.FormData()
    upload.add_field("camera_id", "gate")
    upload.add_field("captured_at", captured.isoformat())
    upload.add_field("seq", "41")
    upload.add_field("file", encode_jpeg(face_image("alice", rng=rng)), filename="f")
    async with api.post("/v1/Image/upload", data=upload) as r:
        assert r.status == 202, await r.text()
        accepted = await r.json()
    body = await decided(api, accepted["frame_id"])

    assert body["camera_seq"] == 41
    assert body["clock_skew_s"] is None
    assert from_text(body["captured_at"]) == captured
    assert [d["outcome"] for d in body["decisions"]] == ["marked"]
    assert body["decisions"][0]["mark"]["local_day"] == captured.date().isoformat()


async def test_a_far_off_capture_time_is_flagged_and_not_trusted(
    api: aiohttp.ClientSession,
) -> None:
    async with api.post("/v1/cameras", json={"id": "gate"}) as r:
        assert r.status == 201
    headers = {**JPEG, "X-Camera-Id": "gate", "X-Captured-At": "1700000000000"}

    async with api.post(
        "/v1/frames", data=encode_jpeg(face_image("x")), headers=headers
    ) as r:
        body = await decided(api, (await r.json())["frame_id"])

    assert body["clock_skew_s"] < -3600
    assert body["captured_at"].startswith("2023-11-14")
    assert body["decisions"][0]["captured_at"][:10] == body["received_at"][:10]


async def test_the_same_bytes_again_are_answered_with_the_first_frame(
    api: aiohttp.ClientSession,
) -> None:
    async with api.post("/v1/cameras", json={"id": "gate"}) as r:
        assert r.status == 201
    frame = encode_jpeg(face_image("x"))
    headers = {**JPEG, "X-Camera-Id": "gate"}

    async with api.post("/v1/frames", data=frame, headers=headers) as r:
        first = await r.json()
    async with api.post("/v1/frames", data=frame, headers=headers) as r:
        again_status, again = r.status, await r.json()

    assert again_status == 200
    assert again["frame_id"] == first["frame_id"]
    assert again["duplicate_of"] == first["frame_id"]


async def test_kiosk_gets_its_decision(api: aiohttp.ClientSession) -> None:
    async with api.post("/v1/cameras", json={"id": "kiosk", "direction": "exit"}) as r:
        assert r.status == 201
    blank = np.full((120, 160, 3), 128, np.uint8)

    async with api.post(
        "/v1/attendance/mark",
        data=encode_jpeg(blank),
        headers={**JPEG, "X-Camera-Id": "kiosk"},
    ) as r:
        status, body = r.status, await r.json()

    # A uniform frame fails the blur gate and never reaches the recognizer.
    assert status == 200
    assert body["state"] == "decided"
    assert [d["outcome"] for d in body["decisions"]] == ["rejected"]
    assert body["decisions"][0]["reason"] == "too_blurry"


@pytest.mark.parametrize(
    ("content", "status", "slug"),
    [
        pytest.param(b"GIF89a not accepted", 415, "unsupported-image", id="gif"),
        pytest.param(b"", 422, "invalid-input", id="empty"),
        pytest.param(
            b"\xff\xd8\xff\xe0" + b"\x00" * 64, 422, "undecodable-image", id="bad-jpeg"
        ),
        pytest.param(
            b"\x89PNG\r\n\x1a\n" + b"\x00" * 300_000, 413, "payload-too-large", id="big"
        ),
    ],
)
async def test_bad_frames_are_refused_with_their_reason(
    api: aiohttp.ClientSession, content: bytes, status: int, slug: str
) -> None:
    async with api.post("/v1/cameras", json={"id": "gate"}) as r:
        assert r.status == 201

    async with api.post(
        "/v1/frames", data=content, headers={**JPEG, "X-Camera-Id": "gate"}
    ) as response:
        await _problem(response, status, slug)


async def test_frame_metadata_is_validated(api: aiohttp.ClientSession) -> None:
    frame = encode_jpeg(face_image("alice"))

    async with api.post("/v1/frames", data=frame, headers=JPEG) as r:
        await _problem(r, 422, "invalid-input")
    async with api.post(
        "/v1/frames",
        data=frame,
        headers={**JPEG, "X-Camera-Id": "gate", "X-Captured-At": "yesterday"},
    ) as r:
        await _problem(r, 422, "invalid-input")
    async with api.post(
        "/v1/frames", data=frame, headers={**JPEG, "X-Camera-Id": "nowhere"}
    ) as r:
        await _problem(r, 404, "not-found")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"name": "No number"}, "employee_no", id="missing-field"),
        pytest.param({"employee_no": "E9", "name": ""}, "name", id="empty-name"),
        pytest.param({"employee_no": "E9", "name": "X", "age": 3}, "age", id="extra"),
    ],
)
async def test_invalid_bodies_name_the_field(
    api: aiohttp.ClientSession, body: dict[str, Any], field: str
) -> None:
    async with api.post("/v1/users", json=body) as response:
        problem = await _problem(response, 422, "invalid-input")

    assert field in [e["field"] for e in problem["errors"]]


async def test_conflicts_and_misses(api: aiohttp.ClientSession) -> None:
    await _person(api, "E1")

    async with api.post("/v1/users", json={"employee_no": "E1", "name": "B"}) as r:
        await _problem(r, 409, "conflict")
    async with api.get("/v1/users/nobody") as r:
        await _problem(r, 404, "not-found")
    async with api.post("/v1/users", data=b"{not json", headers=JPEG) as r:
        await _problem(r, 422, "invalid-input")
    async with api.get("/v1/nothing-here") as r:
        await _problem(r, 404, "route-not-found")
    async with api.delete("/v1/users") as r:
        await _problem(r, 405, "method-not-allowed")
    async with api.get("/v1/attendance", params={"day": "someday"}) as r:
        await _problem(r, 422, "invalid-input")


async def test_enrollment_refuses_faceless_and_non_images(
    api: aiohttp.ClientSession,
) -> None:
    person_id = await _person(api)
    # A flat picture would be refused as too blurry before any face search.
    blank = encode_jpeg(faceless_image())

    async with api.post(f"/v1/users/{person_id}/faces", data=blank, headers=JPEG) as r:
        await _problem(r, 422, "no-face-found")
    async with api.post(f"/v1/users/{person_id}/faces", data=b"text") as r:
        await _problem(r, 415, "unsupported-image")


async def test_every_response_carries_a_request_id(api: aiohttp.ClientSession) -> None:
    async with api.get("/healthz", headers={"X-Request-Id": "cam-42.7"}) as r:
        kept = r.headers["X-Request-Id"]
    async with api.get("/v1/users/nobody", headers={"X-Request-Id": "bad id!"}) as r:
        replaced = r.headers["X-Request-Id"]

    assert kept == "cam-42.7"
    assert replaced != "bad id!"
    assert len(replaced) == 32


async def test_enrollment_while_the_recognizer_is_down_is_a_503(
    tmp_path: Path,
) -> None:
    settings = load_settings(
        overrides={
            "storage": {"data_dir": tmp_path / "data"},
            "recognizer": {
                "url": f"http://127.0.0.1:{free_port()}",
                "timeout_s": 1,
                "retries": 0,
            },
        }
    )
    app = create_app(settings)
    async with servers.serve(app) as url:
        issued = await app[SERVICES].auth.issue_token(
            "t", Role.ADMIN, 60, local_admin("test")
        )
        admin = {"Authorization": f"Bearer {issued.token}"}
        async with aiohttp.ClientSession(base_url=url, headers=admin) as api:
            person_id = await _person(api)
            async with api.post(
                f"/v1/users/{person_id}/faces",
                data=encode_jpeg(face_image("alice")),
                headers=JPEG,
            ) as r:
                await _problem(r, 503, "recognizer-unavailable")
                assert int(r.headers["Retry-After"]) > 0
