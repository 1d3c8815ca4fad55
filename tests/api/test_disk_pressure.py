"""A nearly full disk refuses new frames visibly, and keeps what it holds."""

from __future__ import annotations

from synthetic_faces import encode_jpeg, face_image

from edge_agent.gateway.problem_details import PROBLEM_TYPE_BASE
from edge_agent.models import Role
from tests.api.conftest import ApplianceFactory

JPEG = {"Content-Type": "image/jpeg", "X-Camera-Id": "gate"}


async def test_frames_are_refused_with_507_while_the_disk_is_nearly_full(
    make_appliance: ApplianceFactory,
) -> None:
    async with make_appliance(spool={"min_free_disk_bytes": 2**62}) as appliance:
        admin = await appliance.token(Role.ADMIN)
        async with appliance.session(admin) as api:
            async with api.post("/v1/cameras", json={"id": "gate"}) as r:
                assert r.status == 201
            frame = encode_jpeg(face_image("x"))
            async with api.post("/v1/frames", data=frame, headers=JPEG) as r:
                status, body = r.status, await r.json()
                retry_after = r.headers.get("Retry-After")
                content_type = r.content_type
            async with api.get("/metrics") as r:
                metrics = await r.text()

    assert status == 507
    assert content_type == "application/problem+json"
    assert body["type"] == f"{PROBLEM_TYPE_BASE}insufficient-storage"
    assert "free" in body["detail"]
    assert retry_after == "60"
    assert 'edge_frames_refused_total{reason="insufficient_storage"} 1.0' in metrics
