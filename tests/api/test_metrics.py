"""Prometheus metrics after a frame's whole life: names, labels, conventions."""

from __future__ import annotations

import aiohttp
from prometheus_client.parser import text_string_to_metric_families
from synthetic_faces import encode_jpeg, face_image

from tests.api.conftest import decided
from tests.support import JPEG


async def _a_marked_frame(api: aiohttp.ClientSession) -> None:
    async with api.post("/v1/users", json={"employee_no": "E1", "name": "Ana"}) as r:
        person_id = (await r.json())["id"]
    image = encode_jpeg(face_image("ana"))
    async with api.post(f"/v1/users/{person_id}/faces", data=image, headers=JPEG):
        pass
    async with api.post("/v1/cameras", json={"id": "gate", "direction": "entry"}):
        pass
    headers = {**JPEG, "X-Camera-Id": "gate"}
    async with api.post("/v1/frames", data=image, headers=headers) as r:
        frame_id = (await r.json())["frame_id"]
    body = await decided(api, frame_id)
    assert body["decisions"][0]["outcome"] == "marked"


async def test_metrics_name_every_stage_and_state_after_a_mark(
    api: aiohttp.ClientSession,
) -> None:
    await _a_marked_frame(api)

    async with api.get("/metrics") as r:
        text = await r.text()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }

    def value(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    stages = {"inspect", "spool", "decode", "recognize", "decide", "commit"}
    for stage in stages:
        assert value("edge_pipeline_stage_duration_seconds_count", stage=stage) >= 1
    assert value("edge_frame_decisions_total", outcome="marked") == 1
    assert value("edge_attendance_marks_total", kind="check_in") == 1
    assert value("edge_recognizer_calls_total", outcome="ok") >= 1
    assert value("edge_recognizer_breaker_state", state="closed") == 1
    assert value("edge_recognizer_breaker_state", state="open") == 0
    assert value("edge_spool_frames") == 0
    assert value("edge_sync_lag_seconds", stream="attendance") > 0  # unsent mark
    assert value("edge_outbox_lag_records", consumer="sync:attendance") == 1
    assert ("edge_cameras", (("state", "unknown"),)) in samples
    route = (("method", "POST"), ("route", "/v1/frames"), ("status", "202"))
    assert samples[("edge_http_requests_total", route)] == 1


async def test_metric_names_follow_prometheus_conventions(
    api: aiohttp.ClientSession,
) -> None:
    async with api.get("/metrics") as r:
        families = list(text_string_to_metric_families(await r.text()))

    ours = [f for f in families if f.name.startswith("edge_")]
    assert len(ours) >= 15
    for family in ours:
        if family.type == "counter" and family.samples:
            assert any(s.name.endswith("_total") for s in family.samples), family.name
        if family.type == "histogram":
            assert family.name.endswith("_seconds"), family.name
        assert family.documentation, family.name
