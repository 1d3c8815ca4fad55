"""The status page in Debian's headless Chromium: its DOM, and a screenshot
checked with OpenCV for size, content, and the colours where they belong."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import cv2
import numpy as np
import numpy.typing as npt
import pytest
from synthetic_faces import encode_jpeg, face_image

from edge_agent.api.keys import SERVICES
from edge_agent.app import create_app
from edge_agent.config import load_settings
from edge_agent.models import Role, local_admin
from tests import servers
from tests.external import services_required
from tests.support import register_camera

API_KEY = "browser-test-key"
WIDTH, HEIGHT = 1280, 900
CHROMIUM_TIMEOUT_S = 90.0
SECTIONS = ("today", "cameras", "recognizer", "sync")

# The page's colours, as OpenCV reads them (BGR): the bar left of each section
# heading, and the "good" (online, closed, ready) and "quiet" (off, disabled)
# badges.
HEADING_BAR = (235, 111, 31)
GOOD_BADGE = (55, 127, 26)
QUIET_BADGE = (129, 119, 110)

Image = npt.NDArray[np.uint8]
Rows = npt.NDArray[np.intp]


@dataclass
class Running:
    url: str
    admin: str


def _chromium() -> str:
    """The browser's path; skips (or fails, when services are required)."""
    found = shutil.which("chromium") or (
        "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None
    )
    if found is not None:
        return found
    reason = "Debian's chromium is not installed (apt-get install chromium)"
    if services_required():
        pytest.fail(f"{reason}, and EDGE_TEST_REQUIRE_SERVICES=1 requires it")
    pytest.skip(reason)


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    """The appliance on a loopback port, with a camera seen online, one
    disabled, and the monitor judging often so the page is current."""
    async with servers.recognizer(API_KEY) as recognizer_url:
        settings = load_settings(
            overrides={
                "storage": {"data_dir": tmp_path / "data"},
                "recognizer": {"url": recognizer_url, "api_key": API_KEY},
                "monitor": {"liveness_interval_s": 0.1},
                "site_id": "north-plant",
            }
        )
        app = create_app(settings)
        async with servers.serve(app) as url:
            issued = await app[SERVICES].auth.issue_token(
                "browser", Role.ADMIN, 600, local_admin("test")
            )
            await _populate(url, issued.token)
            yield Running(url, issued.token)


async def _populate(url: str, token: str) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(base_url=url, headers=auth) as api:
        key = await register_camera(api, id="gate", name="Main gate", location="North")
        await register_camera(api, id="yard", name="Yard", location="South")
        async with api.post("/v1/cameras/yard/disable") as r:
            assert r.status == 200
        frame = encode_jpeg(face_image("visitor"))
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "image/jpeg"}
        async with api.post("/v1/frames", data=frame, headers=headers) as r:
            assert r.status == 202
        await _until_judged(api)


async def _until_judged(api: aiohttp.ClientSession) -> None:
    """Wait (bounded) until the monitor judged both cameras."""
    for _ in range(100):
        async with api.get("/v1/status") as r:
            body = await r.json()
        states = {c["camera_id"]: c["state"] for c in body["cameras"]}
        if states == {"gate": "online", "yard": "disabled"}:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"cameras were not judged in time: {states}")


async def _run_chromium(tmp_path: Path, *args: str) -> str:
    """Run the browser headless with ``args``; its stdout, bounded in time."""
    profile = tmp_path / "profile"
    command = [
        _chromium(),
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        *args,
    ]
    process = await asyncio.create_subprocess_exec(
        *command,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    try:
        async with asyncio.timeout(CHROMIUM_TIMEOUT_S):
            out, err = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode == 0, err.decode(errors="replace")[-2000:]
    return out.decode()


def _rows_with(image: Image, colour: tuple[int, int, int], min_pixels: int) -> Rows:
    """Indices of the rows holding at least ``min_pixels`` of ``colour``."""
    near = np.all(np.abs(image.astype(int) - colour) <= 6, axis=2)
    return np.flatnonzero(near.sum(axis=1) >= min_pixels)


def _bands(rows: Rows) -> list[tuple[int, int]]:
    """Runs of consecutive row indices, as (first, last)."""
    bands: list[tuple[int, int]] = []
    for row in (int(r) for r in rows):
        if bands and row == bands[-1][1] + 1:
            bands[-1] = (bands[-1][0], row)
        else:
            bands.append((row, row))
    return bands


def _within(rows: Rows, top: int, bottom: int) -> bool:
    return bool(np.any((rows > top) & (rows < bottom)))


async def test_every_section_renders_in_chromium(
    running: Running, tmp_path: Path
) -> None:
    dom = await _run_chromium(tmp_path, "--dump-dom", running.url + "/")

    for section in SECTIONS:
        assert f'<section id="{section}">' in dom
    assert "Site north-plant" in dom
    assert "Main gate" in dom
    assert '<span class="badge good">online</span>' in dom
    assert '<span class="badge quiet">disabled</span>' in dom
    assert "No central server is configured." in dom


async def test_the_screenshot_shows_sections_and_badges(
    running: Running, tmp_path: Path
) -> None:
    shot = tmp_path / "page.png"
    await _run_chromium(
        tmp_path,
        f"--screenshot={shot}",
        f"--window-size={WIDTH},{HEIGHT}",
        running.url + "/",
    )

    decoded = cv2.imread(str(shot), cv2.IMREAD_COLOR)
    assert decoded is not None, "the screenshot does not decode"
    image: Image = np.asarray(decoded, dtype=np.uint8)
    assert image.shape == (HEIGHT, WIDTH, 3)
    assert float(image.std()) > 10.0, "the screenshot is blank"

    headings = _bands(_rows_with(image, HEADING_BAR, min_pixels=4))
    assert len(headings) == len(SECTIONS), headings
    today, cameras, recognizer, sync = (top for top, _ in headings)
    good = _rows_with(image, GOOD_BADGE, min_pixels=20)
    quiet = _rows_with(image, QUIET_BADGE, min_pixels=20)
    assert _within(good, cameras, recognizer), "no online badge among cameras"
    assert _within(quiet, cameras, recognizer), "no disabled badge among cameras"
    assert _within(good, recognizer, sync), "no closed breaker badge"
    assert _within(quiet, sync, HEIGHT), "no sync off badge"
    assert not _within(good, today, cameras), "a badge in the counts"
