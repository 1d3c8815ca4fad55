"""Durability, end to end: accepted frames survive kill -9 and recognizer outages.

The daemon runs as its own process against a recognizer that is not there
yet; frames are accepted (202) into the spool, and must all be decided, once
each, when the recognizer appears, whether or not the daemon died meanwhile.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from local_services import Service, edge_agent, free_port, reference_recognizer, stop
from synthetic_faces import encode_jpeg, face_image, stranger_identity

from tests.support import JPEG

API_KEY = "durability-key"
FRAMES = 12
# Fail fast and retry soon, so an outage of a few seconds is short to wait out.
QUICK_RETRIES = {
    "EDGE_AGENT_RECOGNIZER__RETRIES": "0",
    "EDGE_AGENT_RECOGNIZER__TIMEOUT_S": "1",
    "EDGE_AGENT_RECOGNIZER__BREAKER_FAILURES": "2",
    "EDGE_AGENT_RECOGNIZER__BREAKER_OPEN_S": "1",
    # The test polls every frame's state; keep the admin's bucket out of it.
    "EDGE_AGENT_RATE_LIMIT__USER__PER_S": "1000",
    "EDGE_AGENT_RATE_LIMIT__USER__BURST": "1000",
}


def _admin(edge: Service) -> httpx.Client:
    return httpx.Client(base_url=edge.url, timeout=10, headers=edge.admin_headers)


def _push_frames(edge: Service, count: int) -> list[str]:
    rng = np.random.default_rng(11)
    with _admin(edge) as api:
        registered = api.post("/v1/cameras", json={"id": "gate"})
        key = registered.raise_for_status().json()["api_key"]
    ids = []
    with httpx.Client(base_url=edge.url, headers={"X-API-Key": key}) as camera:
        for _ in range(count):
            image = encode_jpeg(face_image(stranger_identity(rng), rng=rng))
            response = camera.post("/v1/frames", content=image, headers=JPEG)
            assert response.status_code == 202, response.text
            ids.append(response.json()["frame_id"])
    return ids


def _states(edge: Service, ids: list[str]) -> list[dict[str, Any]]:
    with _admin(edge) as api:
        return [api.get(f"/v1/frames/{frame_id}").json() for frame_id in ids]


def _wait_decided(edge: Service, ids: list[str]) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        states = _states(edge, ids)
        if all(state["state"] == "decided" for state in states):
            return states
        time.sleep(0.2)
    raise AssertionError("not every frame was decided in time")


def _stored(data_dir: Path) -> tuple[int, int, int]:
    with sqlite3.connect(data_dir / "edge-agent.sqlite3") as conn:
        frames = conn.execute("SELECT count(*) FROM frames").fetchone()[0]
        queued = conn.execute(
            "SELECT count(*) FROM frames WHERE state = 'queued'"
        ).fetchone()[0]
        decisions = conn.execute("SELECT count(*) FROM decisions").fetchone()[0]
    return frames, queued, decisions


def test_kill_9_with_frames_in_the_spool_loses_none(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    port = free_port()
    absent = f"http://127.0.0.1:{port}"

    with edge_agent(tmp_path, data_dir, absent, API_KEY, QUICK_RETRIES) as edge:
        ids = _push_frames(edge, FRAMES)
        assert {s["state"] for s in _states(edge, ids)} == {"queued"}
        edge.process.kill()
        edge.process.wait()

    assert _stored(data_dir) == (FRAMES, FRAMES, 0)
    assert len(list((data_dir / "spool").glob("*.frame"))) == FRAMES

    with (
        reference_recognizer(tmp_path, API_KEY, port=port),
        edge_agent(tmp_path, data_dir, absent, API_KEY, QUICK_RETRIES) as edge,
    ):
        states = _wait_decided(edge, ids)

    assert all(len(state["decisions"]) == 1 for state in states)
    assert {state["decisions"][0]["outcome"] for state in states} == {"unknown"}
    assert _stored(data_dir) == (FRAMES, 0, FRAMES)
    assert list((data_dir / "spool").glob("*")) == []


def test_recognizer_outage_holds_frames_until_it_returns(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    port = free_port()
    absent = f"http://127.0.0.1:{port}"

    with edge_agent(tmp_path, data_dir, absent, API_KEY, QUICK_RETRIES) as edge:
        ids = _push_frames(edge, FRAMES)
        time.sleep(1.5)
        during = httpx.get(f"{edge.url}/readyz").json()

        with reference_recognizer(tmp_path, API_KEY, port=port):
            states = _wait_decided(edge, ids)
            after = httpx.get(f"{edge.url}/readyz")

    assert during["status"] == "not_ready"
    assert any("recognizer" in reason for reason in during["reasons"])
    assert during["checks"]["spool_frames"] == FRAMES
    assert all(len(state["decisions"]) == 1 for state in states)
    assert after.status_code == 200
    assert _stored(data_dir) == (FRAMES, 0, FRAMES)


def test_sigterm_with_frames_in_flight_loses_none(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    port = free_port()
    absent = f"http://127.0.0.1:{port}"

    with edge_agent(tmp_path, data_dir, absent, API_KEY, QUICK_RETRIES) as edge:
        ids = _push_frames(edge, FRAMES)
        # Workers hold frames waiting for the recognizer while the signal comes.
        time.sleep(0.5)
        code = stop(edge.process)

    assert code == 0
    assert _stored(data_dir) == (FRAMES, FRAMES, 0)
    log = (tmp_path / "edge-agent.log").read_text()
    assert "Traceback" not in log

    with (
        reference_recognizer(tmp_path, API_KEY, port=port),
        edge_agent(tmp_path, data_dir, absent, API_KEY, QUICK_RETRIES) as edge,
    ):
        states = _wait_decided(edge, ids)

    assert all(len(state["decisions"]) == 1 for state in states)
    assert _stored(data_dir) == (FRAMES, 0, FRAMES)
