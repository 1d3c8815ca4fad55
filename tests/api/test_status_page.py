"""The status page and its JSON over HTTP: content, escaping, access, headers."""

from __future__ import annotations

import asyncio
import re

import aiohttp
import pytest
from synthetic_faces import encode_jpeg, face_image

from edge_agent.models import Role
from tests.api.conftest import Appliance, ApplianceFactory
from tests.support import JPEG, register_camera

# The monitor judges cameras often, so a pushed frame shows on the page soon.
QUICK_MONITOR = {"liveness_interval_s": 0.1}
SECTIONS = ("today", "cameras", "recognizer", "sync")


async def _page(session: aiohttp.ClientSession) -> str:
    async with session.get("/") as r:
        assert r.status == 200, await r.text()
        return await r.text()


def _camera_row(page: str, camera_id: str) -> str:
    match = re.search(rf"<tr><td>{camera_id}</td>.*?</tr>", page)
    assert match, f"no row for camera {camera_id}"
    return match.group(0)


async def _row_once(session: aiohttp.ClientSession, camera_id: str, text: str) -> str:
    """The camera's row once it holds ``text`` (polled, bounded)."""
    for _ in range(100):
        row = _camera_row(await _page(session), camera_id)
        if text in row:
            return row
        await asyncio.sleep(0.05)
    raise AssertionError(f"camera {camera_id} never showed {text!r}: {row}")


async def test_a_pushed_frame_shows_on_the_page(
    make_appliance: ApplianceFactory,
) -> None:
    async with make_appliance(monitor=QUICK_MONITOR) as appliance:
        async with appliance.session(await appliance.token(Role.ADMIN)) as api:
            key = await register_camera(api, id="gate", name="Gate", location="North")
            async with (
                appliance.session(key) as camera,
                camera.post(
                    "/v1/frames", data=encode_jpeg(face_image("x")), headers=JPEG
                ) as r,
            ):
                assert r.status == 202
        async with appliance.session() as anyone:
            row = await _row_once(anyone, "gate", ">1</td>")
            page = await _page(anyone)

    assert "<td>Gate</td><td>North</td>" in row
    assert '<span class="badge good">online</span>' in row
    assert "never" not in row
    assert "excellent" in row
    for section in SECTIONS:
        assert f'<section id="{section}"><h2>' in page
    assert '<meta http-equiv="refresh" content="10">' in page


async def test_today_shows_counts_and_no_names(
    appliance: Appliance, api: aiohttp.ClientSession
) -> None:
    person = {"employee_no": "E-77", "name": "Ada Quartermain"}
    async with api.post("/v1/users", json=person) as r:
        assert r.status == 201, await r.text()

    page = await _page(api)

    assert "Ada Quartermain" not in page
    assert "E-77" not in page
    today = re.search(r'<section id="today">.*?</section>', page)
    assert today is not None
    counts = dict(re.findall(r"<dt>([^<]+)</dt><dd>(\d+)</dd>", today.group(0)))
    assert sum(int(counts[k]) for k in ("Present", "Absent", "Off")) == 1
    assert counts["Marks"] == "0"


async def test_every_value_is_escaped(
    appliance: Appliance, api: aiohttp.ClientSession
) -> None:
    await register_camera(
        api, id="evil", name="<script>alert(1)</script>", location="a&b"
    )

    page = await _page(api)

    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<td>a&amp;b</td>" in page


async def test_sync_reads_off_without_a_central_server(
    appliance: Appliance,
) -> None:
    async with appliance.session() as anyone:
        page = await _page(anyone)

    sync = re.search(r'<section id="sync">.*?</section>', page)
    assert sync is not None
    assert "No central server is configured." in sync.group(0)
    assert '<td>attendance</td><td><span class="badge quiet">off</span>' in page


async def test_the_page_headers_forbid_caching_and_scripts(
    appliance: Appliance,
) -> None:
    async with appliance.session() as anyone, anyone.get("/") as r:
        headers = r.headers

    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Cache-Control"] == "no-store"
    policy = headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy
    assert "style-src 'unsafe-inline'" in policy
    assert "script-src" not in policy


@pytest.mark.parametrize(
    ("role", "status"),
    [
        pytest.param(None, 401, id="anonymous"),
        pytest.param(Role.USER, 403, id="user"),
        pytest.param(Role.ADMIN, 200, id="admin"),
    ],
)
async def test_a_closed_page_needs_the_metrics_permission(
    make_appliance: ApplianceFactory, role: Role | None, status: int
) -> None:
    async with make_appliance(auth={"open_status_page": False}) as appliance:
        token = await appliance.token(role) if role else None
        async with appliance.session(token) as session, session.get("/") as r:
            assert r.status == status


async def test_the_json_snapshot_needs_attendance_read(
    appliance: Appliance, api: aiohttp.ClientSession
) -> None:
    await register_camera(api, id="gate", name="Gate")
    user = await appliance.token(Role.USER)
    async with appliance.session() as anyone, anyone.get("/v1/status") as r:
        assert r.status == 401
    async with appliance.session(user) as reader, reader.get("/v1/status") as r:
        assert r.status == 200
        assert r.headers["Cache-Control"] == "no-store"
        body = await r.json()

    assert set(body) >= {"at", "site_id", "timezone", "today", "cameras", "sync"}
    assert body["cameras"][0]["camera_id"] == "gate"
    assert body["recognizer"]["breaker"] == "closed"
    assert body["sync"]["enabled"] is False
    assert {s["stream"] for s in body["sync"]["streams"]} >= {"attendance", "audit"}
