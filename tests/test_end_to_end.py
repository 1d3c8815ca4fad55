"""End to end: the reference recognizer and the daemon as real loopback servers.

Two people are enrolled over HTTP, a camera pushes frames of them and of a
stranger, and the marks must survive a restart of the daemon.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from local_services import Service, edge_agent, reference_recognizer, stop
from synthetic_faces import encode_jpeg, face_image, stranger_identity

from tests.support import JPEG

API_KEY = "end-to-end-key"


@pytest.fixture
def recognizer(tmp_path: Path) -> Iterator[Service]:
    """The reference recognizer, started as its own process."""
    with reference_recognizer(tmp_path, API_KEY) as service:
        yield service


def _client(edge: Service) -> httpx.Client:
    """An admin's client of the running daemon."""
    return httpx.Client(base_url=edge.url, timeout=10, headers=edge.admin_headers)


def _enroll(api: httpx.Client, employee_no: str, identity: str) -> str:
    person = api.post("/v1/users", json={"employee_no": employee_no, "name": identity})
    assert person.status_code == 201, person.text
    person_id: str = person.json()["id"]

    image = encode_jpeg(face_image(identity))
    face = api.post(f"/v1/users/{person_id}/faces", content=image, headers=JPEG)
    assert face.status_code == 201, face.text
    return person_id


def _camera(edge: Service, key: str) -> httpx.Client:
    """A camera's client: it names itself by its API key alone."""
    return httpx.Client(base_url=edge.url, timeout=10, headers={"X-API-Key": key})


def _push(camera: httpx.Client, identity: str, rng: np.random.Generator) -> str:
    """Push a frame; return its id once the appliance has accepted it (202)."""
    frame = encode_jpeg(face_image(identity, rng=rng))
    response = camera.post("/v1/frames", content=frame, headers=JPEG)
    assert response.status_code == 202, response.text
    assert response.headers["Location"] == f"/v1/frames/{response.json()['frame_id']}"
    frame_id: str = response.json()["frame_id"]
    return frame_id


def _decided(client: httpx.Client, frame_id: str) -> dict[str, Any]:
    """The frame's status once decided (polled, bounded)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        body: dict[str, Any] = client.get(f"/v1/frames/{frame_id}").json()
        if body["state"] == "decided":
            return body
        time.sleep(0.05)
    raise AssertionError(f"frame {frame_id} was not decided in time")


def _outcomes(body: dict[str, Any]) -> list[str]:
    return [d["outcome"] for d in body["decisions"]]


def _today(api: httpx.Client) -> list[dict[str, Any]]:
    response = api.get("/v1/attendance", params={"day": "today"})
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()["attendance"]
    return rows


def test_frames_become_marks_once_and_survive_a_restart(
    tmp_path: Path, recognizer: Service
) -> None:
    data_dir = tmp_path / "data"
    rng = np.random.default_rng(7)

    with edge_agent(tmp_path, data_dir, recognizer.url, API_KEY) as edge:
        with _client(edge) as api:
            alice = _enroll(api, "E1", "alice")
            bob = _enroll(api, "E2", "bob")
            camera = api.post("/v1/cameras", json={"id": "gate", "direction": "entry"})
            assert camera.status_code == 201, camera.text
            key = camera.json()["api_key"]

            with _camera(edge, key) as gate:
                pushed = {
                    "alice": [_push(gate, "alice", rng) for _ in range(3)],
                    "bob": [_push(gate, "bob", rng) for _ in range(3)],
                    "stranger": [
                        _push(gate, stranger_identity(rng), rng) for _ in range(3)
                    ],
                }
                seen = {
                    who: [_decided(gate, frame_id) for frame_id in ids]
                    for who, ids in pushed.items()
                }

            marks = _today(api)
        assert stop(edge.process) == 0

    # Frames are decided concurrently: which of a person's frames marks is
    # not fixed, but exactly one does and the others are duplicates.
    for person in ("alice", "bob"):
        outcomes = sorted(o for body in seen[person] for o in _outcomes(body))
        assert outcomes == ["duplicate", "duplicate", "marked"], person
    assert all(_outcomes(b) == ["unknown"] for b in seen["stranger"])
    alice_mark = next(
        d for b in seen["alice"] for d in b["decisions"] if d["outcome"] == "marked"
    )
    assert alice_mark["person"]["id"] == alice
    assert alice_mark["mark"]["kind"] == "check_in"
    assert sorted(m["person_id"] for m in marks) == sorted([alice, bob])

    with sqlite3.connect(data_dir / "edge-agent.sqlite3") as conn:
        stored = conn.execute("SELECT person_id FROM attendance").fetchall()
        decisions = conn.execute("SELECT outcome FROM decisions").fetchall()
    assert sorted(r[0] for r in stored) == sorted([alice, bob])
    assert len(decisions) == 9

    with (
        edge_agent(tmp_path, data_dir, recognizer.url, API_KEY) as edge,
        _client(edge) as api,
        _camera(edge, key) as gate,
    ):
        assert [m["id"] for m in _today(api)] == [m["id"] for m in marks]
        again = _decided(gate, _push(gate, "alice", rng))
        assert _outcomes(again) == ["duplicate"]


def test_refusals_are_problem_details(tmp_path: Path, recognizer: Service) -> None:
    with (
        edge_agent(tmp_path, tmp_path / "data", recognizer.url, API_KEY) as edge,
        _client(edge) as api,
    ):
        api.post("/v1/cameras", json={"id": "gate"}).raise_for_status()
        not_image = api.post(
            "/v1/frames",
            content=b"this is not a picture",
            headers={**JPEG, "X-Camera-Id": "gate"},
        )
        unknown_camera = api.post(
            "/v1/frames",
            content=encode_jpeg(face_image("alice")),
            headers={**JPEG, "X-Camera-Id": "elsewhere"},
        )
        anonymous = httpx.post(f"{edge.url}/v1/frames", content=b"x", headers=JPEG)
        assert api.get("/healthz").status_code == 200

    assert not_image.status_code == 415
    assert not_image.headers["Content-Type"].startswith("application/problem+json")
    assert not_image.json()["type"].endswith(":unsupported-image")
    assert unknown_camera.status_code == 404
    assert unknown_camera.json()["status"] == 404
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
