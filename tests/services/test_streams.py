"""Stream service against real sources: an MJPEG AVI file and an HTTP MJPEG camera.

The camera is an aiohttp handler on 127.0.0.1 that sends a bounded number
of ``multipart/x-mixed-replace`` JPEG parts per connection and then drops
the connection, so every test's loopback traffic and duration are bounded.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pytest
from aiohttp import web

from edge_agent.clients.storage.audit import AuditRepository
from edge_agent.clients.storage.cameras import CameraRepository
from edge_agent.clients.storage.database import Database
from edge_agent.clients.storage.security import CameraKeyRepository
from edge_agent.clients.storage.streams import StreamRepository
from edge_agent.clock import SystemClock
from edge_agent.errors import Conflict, InvalidInput, NotFound, PoorQuality
from edge_agent.models import Direction, Principal, PrincipalKind, Role, local_admin
from edge_agent.services.audit import AuditFilter, AuditService
from edge_agent.services.cameras import CameraService
from edge_agent.services.ingestion import FrameUpload
from edge_agent.services.streams import Stream, StreamService, StreamState

ADMIN = local_admin("test")
CAMERA = "door-1"
JPEG_SOI = b"\xff\xd8\xff"
# Generous bounds for loopback reads; a healthy run needs a fraction of them.
WAIT_S = 5.0
POLL_S = 0.02
# Grey level steps between connections of the camera, and frames of a file.
CONNECTION_STEP = 40
FRAME_STEP = 12


def jpeg(level: int) -> bytes:
    """A small flat grey JPEG."""
    ok, encoded = cv2.imencode(".jpg", np.full((48, 64, 3), level, np.uint8))
    assert ok
    return encoded.tobytes()


def grey_level(content: bytes, step: int) -> int:
    """The flat grey level of a JPEG in units of ``step`` (JPEG is lossy)."""
    pixels = cv2.imdecode(np.frombuffer(content, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert pixels is not None
    return round(float(pixels.mean()) / step)


class RecordingRepository(StreamRepository):
    """The real repository, remembering every state it was asked to store."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.states: list[StreamState] = []

    async def set_state(
        self, stream_id: str, state: StreamState, last_error: str | None
    ) -> bool:
        self.states.append(state)
        return await super().set_state(stream_id, state, last_error)


@dataclass
class Submitted:
    """A submit callback that records frames; ``refuse`` decides per frame."""

    uploads: list[FrameUpload] = field(default_factory=list)
    refuse: Callable[[int], Exception | None] = lambda _: None

    async def __call__(self, upload: FrameUpload) -> str:
        error = self.refuse(len(self.uploads))
        self.uploads.append(upload)
        if error is not None:
            raise error
        return f"frame-{len(self.uploads)}"


@dataclass
class Rig:
    service: StreamService
    repository: RecordingRepository
    submitted: Submitted
    audit: AuditService
    db: Database

    def new_service(self) -> StreamService:
        """A second service over the same database, as after a restart."""
        cameras = CameraService(
            CameraRepository(self.db),
            CameraKeyRepository(self.db),
            self.audit,
            SystemClock(),
            60,
        )
        return _stream_service(self.repository, cameras, self.submitted, self.audit)


def _stream_service(
    repository: StreamRepository,
    cameras: CameraService,
    submit: Callable[[FrameUpload], Awaitable[object]],
    audit: AuditService,
) -> StreamService:
    return StreamService(
        repository,
        cameras,
        submit,
        SystemClock(),
        audit=audit,
        reconnect_backoff_s=0.05,
        max_backoff_s=0.2,
        open_timeout_s=2.0,
        read_timeout_s=2.0,
    )


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    """A started stream service over a fresh database with one camera."""
    db = Database(tmp_path / "edge.sqlite3")
    await db.open()
    audit = AuditService(AuditRepository(db), SystemClock())
    cameras = CameraService(
        CameraRepository(db), CameraKeyRepository(db), audit, SystemClock(), 60
    )
    await cameras.register(CAMERA, "Door", Direction.ENTRY, ADMIN)
    repository = RecordingRepository(db)
    submitted = Submitted()
    service = _stream_service(repository, cameras, submitted, audit)
    await service.start()
    yield Rig(service, repository, submitted, audit, db)
    await service.stop()
    await db.close()


@dataclass
class MjpegCamera:
    """An HTTP MJPEG camera: ``frames`` parts per connection, then it hangs up.

    Connection n sends frames of grey level ``n * CONNECTION_STEP``, so a
    frame shows which connection brought it. Past ``max_connections`` it answers 503.
    """

    frames: int
    interval_s: float = 0.02
    max_connections: int = 3
    connections: int = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.connections += 1
        if self.connections > self.max_connections:
            return web.Response(status=503)
        response = web.StreamResponse(
            headers={"Content-Type": "multipart/x-mixed-replace; boundary=frame"}
        )
        await response.prepare(request)
        part = jpeg(self.connections * CONNECTION_STEP)
        head = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"
        for _ in range(self.frames):
            await response.write(head % len(part) + part + b"\r\n")
            await asyncio.sleep(self.interval_s)
        return response


@asynccontextmanager
async def serve_camera(camera: MjpegCamera) -> AsyncIterator[str]:
    """Serve ``camera`` on a free loopback port; yield its stream URL."""
    app = web.Application()
    app.router.add_get("/video", camera.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}/video"
    finally:
        await runner.cleanup()


def write_clip(path: Path, frames: int, fps: float = 10.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (64, 48))
    assert writer.isOpened()
    for index in range(frames):
        writer.write(np.full((48, 64, 3), index * FRAME_STEP, np.uint8))
    writer.release()
    return path


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def until(check: Callable[[], bool], timeout_s: float = WAIT_S) -> None:
    """Poll until ``check()`` holds; fail the test after ``timeout_s``."""
    for _ in range(round(timeout_s / POLL_S)):
        if check():
            return
        await asyncio.sleep(POLL_S)
    pytest.fail(f"still not true after {timeout_s} s")


async def until_state(rig: Rig, stream: Stream, *states: StreamState) -> Stream:
    """Poll the stored stream until its state is one of ``states``."""
    for _ in range(round(WAIT_S / POLL_S)):
        current = await rig.service.get(stream.id)
        if current.state in states:
            return current
        await asyncio.sleep(POLL_S)
    pytest.fail(f"stream never reached {states}; states: {rig.repository.states}")


def capture_threads(stream: Stream) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"stream-{stream.id}"]


def _connections_seen(rig: Rig) -> set[int]:
    """Which camera connections the submitted frames came through."""
    return {grey_level(u.content, CONNECTION_STEP) for u in rig.submitted.uploads}


async def test_mjpeg_frames_reach_submit_as_the_camera(rig: Rig) -> None:
    async with serve_camera(MjpegCamera(frames=200)) as url:
        stream = await rig.service.register(CAMERA, url, 0.1, ADMIN)
        await until(lambda: len(rig.submitted.uploads) >= 3)
        current = await rig.service.get(stream.id)
        await rig.service.stop()

    upload = rig.submitted.uploads[0]
    assert upload.sender == Principal(
        PrincipalKind.CAMERA, CAMERA, Role.CAMERA, camera_id=CAMERA
    )
    assert upload.camera_id == CAMERA
    assert upload.content.startswith(JPEG_SOI)
    assert grey_level(upload.content, CONNECTION_STEP) == 1
    assert upload.captured_at is not None
    assert upload.captured_at.tzinfo is not None
    assert current.state is StreamState.STREAMING
    assert current.last_frame_at is not None
    assert rig.repository.states[:2] == [StreamState.STARTING, StreamState.STREAMING]


async def test_samples_follow_the_interval_not_the_camera_rate(rig: Rig) -> None:
    # 50 frames a second for about 0.6 s, sampled every 0.2 s.
    async with serve_camera(MjpegCamera(frames=30, max_connections=1)) as url:
        stream = await rig.service.register(CAMERA, url, 0.2, ADMIN)
        await until_state(rig, stream, StreamState.RECONNECTING)

    assert 2 <= len(rig.submitted.uploads) <= 6


async def test_reader_reconnects_after_the_camera_hangs_up(rig: Rig) -> None:
    camera = MjpegCamera(frames=8, max_connections=3)
    async with serve_camera(camera) as url:
        stream = await rig.service.register(CAMERA, url, 0.1, ADMIN)
        await until(lambda: camera.connections >= 3)
        await until(lambda: {1, 2} <= _connections_seen(rig))
        current = await rig.service.get(stream.id)
        await rig.service.stop()

    states = rig.repository.states
    reconnected = states.index(StreamState.RECONNECTING)
    assert states[:reconnected] == [StreamState.STARTING, StreamState.STREAMING]
    assert StreamState.STREAMING in states[reconnected:]
    assert current.last_error is not None
    assert "stream ended" in current.last_error


async def test_stop_ends_the_capture_thread_promptly(rig: Rig) -> None:
    async with serve_camera(MjpegCamera(frames=500, max_connections=1)) as url:
        stream = await rig.service.register(CAMERA, url, 0.1, ADMIN)
        await until(lambda: len(rig.submitted.uploads) >= 1)
        assert capture_threads(stream)

        started = time.monotonic()
        await rig.service.stop()
        elapsed = time.monotonic() - started

    assert elapsed < 1.0
    assert capture_threads(stream) == []
    assert (await rig.service.get(stream.id)).state is StreamState.STOPPED


@pytest.mark.parametrize("scheme", ["http", "rtsp"])
async def test_closed_port_keeps_reconnecting_with_its_error(
    rig: Rig, scheme: str
) -> None:
    url = f"{scheme}://127.0.0.1:{closed_port()}/video"
    stream = await rig.service.register(CAMERA, url, 1.0, ADMIN)

    current = await until_state(rig, stream, StreamState.RECONNECTING)
    await until(lambda: rig.repository.states.count(StreamState.RECONNECTING) >= 3)

    assert current.last_error is not None
    assert "cannot open video source" in current.last_error
    assert rig.submitted.uploads == []


async def test_file_source_plays_once_and_finishes(rig: Rig, tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "door.avi", frames=5)
    stream = await rig.service.register(CAMERA, clip.as_uri(), 0.1, ADMIN)

    finished = await until_state(rig, stream, StreamState.FINISHED)
    await until(lambda: capture_threads(stream) == [])

    frames = [grey_level(u.content, FRAME_STEP) for u in rig.submitted.uploads]
    assert frames == [0, 1, 2, 3, 4]
    assert rig.repository.states == [
        StreamState.STARTING,
        StreamState.STREAMING,
        StreamState.FINISHED,
    ]
    assert finished.last_error is None

    restarted = rig.new_service()
    await restarted.start()
    await asyncio.sleep(0.2)
    await restarted.stop()
    assert len(rig.submitted.uploads) == 5


async def test_missing_file_fails_without_retrying(rig: Rig, tmp_path: Path) -> None:
    url = (tmp_path / "absent.avi").as_uri()
    stream = await rig.service.register(CAMERA, url, 1.0, ADMIN)

    failed = await until_state(rig, stream, StreamState.FAILED)

    assert failed.last_error is not None
    assert "cannot open video source" in failed.last_error
    assert StreamState.RECONNECTING not in rig.repository.states


async def test_refused_frames_do_not_stop_the_stream(rig: Rig, tmp_path: Path) -> None:
    def refuse_first_two(index: int) -> Exception | None:
        return PoorQuality("too dark", reason="dark") if index < 2 else None

    rig.submitted.refuse = refuse_first_two
    clip = write_clip(tmp_path / "door.avi", frames=4)
    stream = await rig.service.register(CAMERA, clip.as_uri(), 0.1, ADMIN)

    finished = await until_state(rig, stream, StreamState.FINISHED)

    assert len(rig.submitted.uploads) == 4
    assert finished.last_frame_at is not None


async def test_unexpected_submit_error_fails_the_stream(
    rig: Rig, tmp_path: Path
) -> None:
    rig.submitted.refuse = lambda _: RuntimeError("ingestion broke")
    clip = write_clip(tmp_path / "door.avi", frames=20)
    stream = await rig.service.register(CAMERA, clip.as_uri(), 0.1, ADMIN)

    failed = await until_state(rig, stream, StreamState.FAILED)
    await until(lambda: capture_threads(stream) == [])

    assert failed.last_error is not None
    assert "ingestion broke" in failed.last_error
    assert len(rig.submitted.uploads) == 1


async def test_streams_registered_while_stopped_start_with_the_service(
    rig: Rig, tmp_path: Path
) -> None:
    await rig.service.stop()
    clip = write_clip(tmp_path / "door.avi", frames=3)
    stream = await rig.service.register(CAMERA, clip.as_uri(), 0.1, ADMIN)
    assert stream.state is StreamState.STOPPED

    await rig.service.start()
    await until_state(rig, stream, StreamState.FINISHED)

    assert len(rig.submitted.uploads) == 3


async def test_remove_stops_the_reader_and_deletes_the_stream(rig: Rig) -> None:
    async with serve_camera(MjpegCamera(frames=500, max_connections=1)) as url:
        stream = await rig.service.register(CAMERA, url, 0.1, ADMIN)
        await until(lambda: len(rig.submitted.uploads) >= 1)
        await rig.service.remove(stream.id, ADMIN)

    assert capture_threads(stream) == []
    assert await rig.service.list_streams() == []
    with pytest.raises(NotFound):
        await rig.service.get(stream.id)
    page = await rig.audit.list_entries(AuditFilter(), None, 100)
    actions = [e.action for e in page.entries if e.target == f"stream:{stream.id}"]
    assert actions == ["stream.registered", "stream.removed"]
    assert all("s3cret" not in str(e.details) for e in page.entries)


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("ftp://cam.local/video", id="other-scheme"),
        pytest.param("rtsp:///no-host", id="no-host"),
        pytest.param("http://cam.local:99999/video", id="bad-port"),
        pytest.param("file://nas/share/door.avi", id="remote-file"),
        pytest.param("file:door.avi", id="relative-file"),
        pytest.param("http://cam.local/a b", id="space"),
    ],
)
async def test_register_refuses_urls_a_reader_must_not_open(rig: Rig, url: str) -> None:
    with pytest.raises(InvalidInput):
        await rig.service.register(CAMERA, url, 1.0, ADMIN)
    assert await rig.service.list_streams() == []


async def test_register_checks_the_camera_and_the_interval(rig: Rig) -> None:
    url = "rtsp://admin:s3cret@127.0.0.1:1/stream"
    with pytest.raises(NotFound):
        await rig.service.register("no-such-camera", url, 1.0, ADMIN)
    with pytest.raises(InvalidInput):
        await rig.service.register(CAMERA, url, 0.01, ADMIN)

    await rig.service.stop()
    await rig.service.register(CAMERA, url, 1.0, ADMIN)
    with pytest.raises(Conflict):
        await rig.service.register(CAMERA, url, 1.0, ADMIN)
    page = await rig.audit.list_entries(AuditFilter(), None, 100)
    assert all("s3cret" not in str(e.details) for e in page.entries)
