"""Probe client: HTTP snapshots and RTSP OPTIONS against real loopback servers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from aiohttp import web

from edge_agent.clients.probes import ProbeClient, looks_like_image
from tests import servers

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64


class Snapshots:
    """An HTTP camera: its answers, and how many requests it serves at once."""

    def __init__(self) -> None:
        self.delay_s = 0.0
        self.in_flight = 0
        self.most_in_flight = 0
        self.authorization: list[str | None] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/snap.jpg", self.snapshot)
        app.router.add_get("/page", self.page)
        app.router.add_get("/missing", self.missing)
        return app

    async def snapshot(self, request: web.Request) -> web.Response:
        self.authorization.append(request.headers.get("Authorization"))
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay_s)
        finally:
            self.in_flight -= 1
        return web.Response(body=JPEG, content_type="image/jpeg")

    async def page(self, request: web.Request) -> web.Response:
        return web.Response(text="<html>login</html>", content_type="text/html")

    async def missing(self, request: web.Request) -> web.Response:
        return web.Response(status=404)


@pytest.fixture
async def camera() -> AsyncIterator[tuple[str, Snapshots]]:
    """An HTTP snapshot camera on a loopback port."""
    snapshots = Snapshots()
    async with servers.serve(snapshots.app()) as url:
        yield url, snapshots


@pytest.fixture
async def client() -> AsyncIterator[ProbeClient]:
    """A probe client with a short timeout and two probes at a time."""
    probes = ProbeClient(timeout_s=0.5, max_concurrent=2)
    yield probes
    await probes.close()


async def test_an_image_answer_is_a_success(
    camera: tuple[str, Snapshots], client: ProbeClient
) -> None:
    url, _ = camera
    result = await client.probe(f"{url}/snap.jpg")
    assert result.ok
    assert result.elapsed_s < 0.5


@pytest.mark.parametrize(
    ("path", "detail"),
    [("/page", "the answer is not an image"), ("/missing", "HTTP 404")],
    ids=["html-page", "not-found"],
)
async def test_other_answers_fail_with_a_reason(
    camera: tuple[str, Snapshots], client: ProbeClient, path: str, detail: str
) -> None:
    url, _ = camera
    result = await client.probe(url + path)
    assert not result.ok
    assert result.detail == detail


async def test_a_slow_camera_times_out(
    camera: tuple[str, Snapshots], client: ProbeClient
) -> None:
    url, snapshots = camera
    snapshots.delay_s = 2.0
    result = await client.probe(f"{url}/snap.jpg")
    assert not result.ok
    assert result.detail == "no answer within 0.5 s"


async def test_no_more_than_the_bound_run_at_once(
    camera: tuple[str, Snapshots], client: ProbeClient
) -> None:
    url, snapshots = camera
    snapshots.delay_s = 0.1
    results = await asyncio.gather(*(client.probe(f"{url}/snap.jpg") for _ in range(6)))
    assert all(r.ok for r in results)
    assert snapshots.most_in_flight == 2


async def test_credentials_are_sent_but_never_shown(
    camera: tuple[str, Snapshots],
    client: ProbeClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, snapshots = camera
    with_secret = url.replace("http://", "http://admin:s3cret@")
    assert (await client.probe(f"{with_secret}/snap.jpg")).ok
    assert snapshots.authorization[0] is not None

    caplog.set_level("DEBUG", logger="edge_agent.clients.probes")
    refused = with_secret.rsplit(":", 1)[0] + ":1/snap.jpg"
    result = await client.probe(refused)
    assert not result.ok
    assert "s3cret" not in result.detail
    assert "s3cret" not in caplog.text


def test_image_signatures() -> None:
    assert looks_like_image(JPEG)
    assert looks_like_image(b"\x89PNG\r\n\x1a\n....")
    assert looks_like_image(b"RIFF\x00\x00\x00\x00WEBPVP8 ")
    assert not looks_like_image(b"<html>")
    assert not looks_like_image(b"")


# --- RTSP ----------------------------------------------------------------------

Reply = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def rtsp_server(reply: Reply) -> AsyncIterator[tuple[str, list[bytes]]]:
    """A tiny RTSP speaker on a loopback port; yields its URL and the requests."""
    requests: list[bytes] = []

    async def handle(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        requests.append(await reader.readuntil(b"\r\n\r\n"))
        try:
            await reply(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"rtsp://127.0.0.1:{port}/stream1", requests
    finally:
        server.close()
        await server.wait_closed()


async def _ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"RTSP/1.0 200 OK\r\nCSeq: 1\r\nPublic: OPTIONS, DESCRIBE\r\n\r\n")
    await writer.drain()


async def _unauthorized(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    writer.write(b"RTSP/1.0 401 Unauthorized\r\nCSeq: 1\r\n\r\n")
    await writer.drain()


async def _silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(1)


async def test_rtsp_options_answered_200_is_a_success(client: ProbeClient) -> None:
    async with rtsp_server(_ok) as (url, requests):
        with_secret = url.replace("rtsp://", "rtsp://admin:s3cret@")
        result = await client.probe(with_secret)
    assert result.ok
    assert requests == [f"OPTIONS {url} RTSP/1.0\r\nCSeq: 1\r\n\r\n".encode()]


async def test_rtsp_other_answers_and_silence_fail(client: ProbeClient) -> None:
    async with rtsp_server(_unauthorized) as (url, _):
        refused = await client.probe(url)
    async with rtsp_server(_silent) as (url, _):
        silent = await client.probe(url)
    assert not refused.ok
    assert "401" in refused.detail
    assert not silent.ok
    assert silent.detail == "no answer within 0.5 s"


async def test_rtsp_nobody_listening_fails(client: ProbeClient) -> None:
    result = await client.probe("rtsp://127.0.0.1:1/stream")
    assert not result.ok
    assert result.detail.startswith(("ConnectionRefusedError", "OSError"))
