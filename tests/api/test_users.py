"""HTTP API of people: partial updates, status, enrollment refusals, face
removal and erasure, through the gateway to the reference recognizer."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from synthetic_faces import (
    encode_jpeg,
    face_image,
    faceless_image,
    on_canvas,
    side_by_side,
)

from edge_agent.api.keys import SETTINGS
from edge_agent.gateway.problem_details import PROBLEM_TYPE_BASE
from tests.api.conftest import API_KEY, Appliance, decided, read_json
from tests.support import JPEG

NAME = "Zebulon Quixote-Marchetti"
EMPLOYEE_NO = "EMP-7Q4X9Z"


async def _problem_type(response: aiohttp.ClientResponse, status: int) -> str:
    body = await read_json(response, status)
    assert response.content_type == "application/problem+json"
    slug: str = body["type"].removeprefix(PROBLEM_TYPE_BASE)
    return slug


async def _person(
    api: aiohttp.ClientSession, employee_no: str = "E1", **fields: Any
) -> dict[str, Any]:
    body = {"employee_no": employee_no, "name": "Alice", **fields}
    async with api.post("/v1/users", json=body) as response:
        person: dict[str, Any] = await read_json(response, 201)
        return person


async def _enroll(
    api: aiohttp.ClientSession, person_id: str, image: bytes, status: int = 201
) -> dict[str, Any]:
    async with api.post(
        f"/v1/users/{person_id}/faces", data=image, headers=JPEG
    ) as response:
        face: dict[str, Any] = await read_json(response, status)
        return face


async def _examples(recognizer_url: str, subject: str) -> list[dict[str, Any]]:
    """The examples the recognizer holds for a subject, asked directly."""
    async with (
        aiohttp.ClientSession(headers={"x-api-key": API_KEY}) as session,
        session.get(
            f"{recognizer_url}/api/v1/recognition/faces", params={"subject": subject}
        ) as response,
    ):
        faces: list[dict[str, Any]] = (await response.json())["faces"]
        return faces


# --- updates and status -------------------------------------------------------


async def test_patch_changes_only_the_fields_sent(api: aiohttp.ClientSession) -> None:
    person = await _person(api, department="Ops", valid_from="2026-01-01")
    path = f"/v1/users/{person['id']}"

    async with api.patch(
        path, json={"name": "Alice Martin", "valid_until": "2026-06-30T17:00:00+02:00"}
    ) as r:
        patched = await read_json(r, 200)
    async with api.patch(path, json={"valid_from": None, "department": None}) as r:
        cleared = await read_json(r, 200)
    async with api.get("/v1/users/E1") as r:
        read = await read_json(r, 200)

    assert (patched["name"], patched["department"]) == ("Alice Martin", "Ops")
    assert patched["valid_from"] == "2026-01-01"
    assert patched["valid_until"] == "2026-06-30T15:00:00.000000+00:00"
    assert read == cleared
    assert (read["valid_from"], read["department"]) == (None, None)
    assert read["valid_until"] == patched["valid_until"]
    assert read["erased_at"] is None


async def test_patch_to_a_taken_employee_number_is_409(
    api: aiohttp.ClientSession,
) -> None:
    await _person(api, "E1")
    bob = await _person(api, "E2")

    async with api.patch(f"/v1/users/{bob['id']}", json={"employee_no": "E1"}) as r:
        assert await _problem_type(r, 409) == "conflict"
    async with api.patch("/v1/users/nobody", json={"name": "X"}) as r:
        assert await _problem_type(r, 404) == "not-found"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"status": "inactive"}, "status", id="status-is-not-a-field"),
        pytest.param({"name": None}, "name", id="null-name"),
        pytest.param({"employee_no": ""}, "employee_no", id="empty-number"),
        pytest.param({"valid_from": "someday"}, "valid_from", id="bad-date"),
        pytest.param(
            {"valid_until": "2026-01-01T08:00:00"}, "valid_until", id="no-offset"
        ),
        pytest.param({"valid_until": 1767225600}, "valid_until", id="a-number"),
    ],
)
async def test_patch_refuses_bad_fields_naming_them(
    api: aiohttp.ClientSession, body: dict[str, Any], field: str
) -> None:
    await _person(api)

    async with api.patch("/v1/users/E1", json=body) as r:
        problem = await read_json(r, 422)

    assert field in [e["field"] for e in problem["errors"]]


async def test_deactivate_and_activate(api: aiohttp.ClientSession) -> None:
    person = await _person(api)

    async with api.post(f"/v1/users/{person['id']}/deactivate") as r:
        inactive = await read_json(r, 200)
    async with api.get("/v1/users/E1") as r:
        read = await read_json(r, 200)
    async with api.post("/v1/users/E1/activate") as r:
        active = await read_json(r, 200)

    assert inactive["status"] == read["status"] == "inactive"
    assert active["status"] == "active"


# --- enrollment ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "slug"),
    [
        pytest.param(lambda: faceless_image(), "no-face-found", id="no-face"),
        pytest.param(
            lambda: side_by_side(
                [face_image(n, size=(320, 480)) for n in ("left", "right")]
            ),
            "several-faces",
            id="two-faces",
        ),
        pytest.param(
            lambda: on_canvas(face_image("tiny", size=(48, 48)), (320, 240)),
            "face-too-small",
            id="face-too-small",
        ),
        pytest.param(lambda: face_image("dim") // 12, "poor-quality", id="too-dark"),
    ],
)
async def test_enrollment_refusals_have_their_own_problem_type(
    api: aiohttp.ClientSession, recognizer_url: str, image: Any, slug: str
) -> None:
    person = await _person(api)

    async with api.post(
        f"/v1/users/{person['id']}/faces", data=encode_jpeg(image()), headers=JPEG
    ) as r:
        assert await _problem_type(r, 422) == slug

    assert await _examples(recognizer_url, person["id"]) == []


async def test_the_same_image_twice_is_one_face(api: aiohttp.ClientSession) -> None:
    person = await _person(api)
    image = encode_jpeg(face_image("alice"))

    first = await _enroll(api, person["id"], image, 201)
    again = await _enroll(api, person["id"], image, 200)

    assert again == first
    assert first["enrolled_by"] == "token:tester"
    assert first["example_id"]


# --- removing faces -----------------------------------------------------------


async def test_removing_a_face_removes_it_at_the_recognizer(
    api: aiohttp.ClientSession, recognizer_url: str
) -> None:
    person_id = (await _person(api))["id"]
    kept = await _enroll(api, person_id, encode_jpeg(face_image("alice")))
    doomed = await _enroll(api, person_id, encode_jpeg(face_image("alice-2")))

    async with api.delete(f"/v1/users/{person_id}/faces/{doomed['id']}") as r:
        assert r.status == 204
    async with api.delete(f"/v1/users/{person_id}/faces/{doomed['id']}") as r:
        assert await _problem_type(r, 404) == "not-found"
    async with api.get(f"/v1/users/{person_id}/faces") as r:
        faces = (await read_json(r, 200))["faces"]

    assert [f["id"] for f in faces] == [kept["id"]]
    held = [e["image_id"] for e in await _examples(recognizer_url, person_id)]
    assert held == [kept["example_id"]]


# --- erasure ------------------------------------------------------------------


def _database_holds(db_path: Path, needles: list[bytes]) -> list[bytes]:
    with closing(sqlite3.connect(db_path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    wal = db_path.with_name(db_path.name + "-wal")
    content = db_path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
    return [needle for needle in needles if needle in content]


async def _frame_people(api: aiohttp.ClientSession, frame_id: str) -> list[Any]:
    async with api.get(f"/v1/frames/{frame_id}") as r:
        return [d["person"] for d in (await read_json(r, 200))["decisions"]]


async def _marks(api: aiohttp.ClientSession, person_id: str) -> list[Any]:
    async with api.get("/v1/attendance", params={"person": person_id}) as r:
        marks: list[Any] = (await read_json(r, 200))["attendance"]
        return marks


async def test_erasure_removes_face_data_everywhere_and_keeps_the_records(
    appliance: Appliance, api: aiohttp.ClientSession, recognizer_url: str
) -> None:
    settings = appliance.app[SETTINGS]
    person_id = (await _person(api, EMPLOYEE_NO, name=NAME, department="R&D"))["id"]
    await _enroll(api, person_id, encode_jpeg(face_image("zebulon")))
    async with api.post("/v1/cameras", json={"id": "gate"}) as r:
        await read_json(r, 201)
    frame = encode_jpeg(face_image("zebulon"))
    async with api.post(
        "/v1/frames", data=frame, headers={**JPEG, "X-Camera-Id": "gate"}
    ) as r:
        frame_id = (await read_json(r, 202))["frame_id"]
    await decided(api, frame_id)
    marks = await _marks(api, person_id)
    needles = [NAME.encode(), EMPLOYEE_NO.encode()]
    assert _database_holds(settings.storage.database_path, needles) == needles

    async with api.delete(f"/v1/users/{EMPLOYEE_NO}") as r:
        erasure = await read_json(r, 200)
    async with api.get(f"/v1/users/{person_id}") as r:
        tombstone = await read_json(r, 200)
    async with api.get("/v1/users") as r:
        listed = (await read_json(r, 200))["users"]
    async with api.get("/v1/users", params={"include_erased": "true"}) as r:
        everyone = (await read_json(r, 200))["users"]
    async with api.get("/v1/audit/logs", params={"action": "person.erased"}) as r:
        audited = (await read_json(r, 200))["entries"]

    assert erasure["person"] == tombstone
    assert erasure["face_links_removed"] == 1
    assert (tombstone["status"], tombstone["name"]) == ("erased", "erased")
    assert tombstone["employee_no"] == f"erased:{person_id}"
    assert tombstone["erased_at"] is not None
    assert listed == []
    assert [p["id"] for p in everyone] == [person_id]
    assert [(e["target"], e["actor"]) for e in audited] == [
        (f"person:{person_id}", "token:tester")
    ]
    assert _database_holds(settings.storage.database_path, needles) == []
    assert await _examples(recognizer_url, person_id) == []
    assert not (settings.storage.data_dir / "faces" / person_id).exists()
    # Marks and decisions stay, for payroll; they now lead to the tombstone.
    assert len(await _marks(api, person_id)) == len(marks)
    assert all(m["name"] == "erased" for m in await _marks(api, person_id))
    named = [p for p in await _frame_people(api, frame_id) if p]
    assert all(p["name"] == "erased" for p in named)


async def test_an_erased_person_cannot_be_changed_or_enrolled(
    api: aiohttp.ClientSession,
) -> None:
    person_id = (await _person(api))["id"]
    async with api.delete(f"/v1/users/{person_id}") as r:
        await read_json(r, 200)

    async with api.patch(f"/v1/users/{person_id}", json={"name": "Back"}) as r:
        assert await _problem_type(r, 409) == "conflict"
    async with api.post(
        f"/v1/users/{person_id}/faces",
        data=encode_jpeg(face_image("alice")),
        headers=JPEG,
    ) as r:
        assert await _problem_type(r, 409) == "conflict"
    async with api.delete(f"/v1/users/{person_id}") as r:
        again = await read_json(r, 200)

    assert again["face_links_removed"] == 0
