"""Stream service: pull frames from cameras' video streams into frame ingestion.

Each enabled stream has one reader task and, while connected, one capture
thread. The thread runs the blocking OpenCV capture (:mod:`imaging.video`)
and hands each sampled frame to the event loop; the task submits it as the
stream's camera, records the reader's state, and reconnects with jittered
exponential backoff when a live source fails or ends. A file source plays
once, at its own frame rate, and then finishes.

A finished file source is not read again at the next start; registering it
anew reads it again.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar
from urllib.parse import urlsplit

from edge_agent.clients.storage.streams import Stream, StreamRepository, StreamState
from edge_agent.clock import Clock
from edge_agent.errors import EdgeError, InvalidInput, NotFound
from edge_agent.imaging.video import (
    SampledFrame,
    VideoSourceUnavailable,
    display_url,
    is_file_source,
    open_capture,
    sample_frames,
)
from edge_agent.models import Principal, PrincipalKind, Role
from edge_agent.services.audit import AuditAction, AuditService, atomically
from edge_agent.services.camera_activity import CameraActivity
from edge_agent.services.cameras import CameraService
from edge_agent.services.ingestion import FrameUpload

__all__ = [
    "MAX_SAMPLE_EVERY_S",
    "MIN_SAMPLE_EVERY_S",
    "SOURCE_SCHEMES",
    "Stream",
    "StreamService",
    "StreamState",
    "check_source_url",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")
Submit = Callable[[FrameUpload], Awaitable[object]]

SOURCE_SCHEMES = ("rtsp", "http", "https", "file")
MIN_SAMPLE_EVERY_S = 0.1
MAX_SAMPLE_EVERY_S = 60.0
_MAX_URL_LENGTH = 2048


# Sampled frames waiting for the loop; more are dropped (see _Handoff).
_WAITING_FRAMES = 2
# last_frame_at is a liveness hint, not a log: write it at most this often,
# since every write is an fsynced transaction.
_LAST_FRAME_EVERY = timedelta(seconds=5)
# Past this many failures the backoff sits at its ceiling anyway.
_MAX_BACKOFF_EXPONENT = 30

_LIVE_STATES = (StreamState.STARTING, StreamState.STREAMING, StreamState.RECONNECTING)


def check_source_url(url: str) -> str:
    """Return ``url`` if a reader may open it, else raise :class:`InvalidInput`.

    Accepted: ``rtsp://``, ``http://`` and ``https://`` URLs with a host, and
    ``file://`` URLs of an absolute local path.
    """
    if len(url) > _MAX_URL_LENGTH or any(c.isspace() or ord(c) < 32 for c in url):
        raise InvalidInput(
            f"a stream URL is at most {_MAX_URL_LENGTH} characters, without spaces"
        )
    try:
        parts = urlsplit(url)
        _ = parts.port  # reading the port is what refuses a malformed one
    except ValueError as exc:
        raise InvalidInput(f"the stream URL does not parse: {exc}") from exc

    if parts.scheme not in SOURCE_SCHEMES:
        raise InvalidInput("a stream URL is rtsp://, http://, https:// or file://")
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise InvalidInput("a file:// stream URL names an absolute local path")
    elif not parts.hostname:
        raise InvalidInput("the stream URL names no host")
    return url


@dataclass(frozen=True, slots=True)
class _ReaderOptions:
    """How readers reconnect, and how long one capture call may block."""

    reconnect_backoff_s: float
    max_backoff_s: float
    open_timeout_s: float
    read_timeout_s: float


class StreamService:
    """The registry of streams, and the readers that pull their frames.

    :meth:`stop` waits for every capture thread; a thread notices the halt
    between reads, so a thread blocked on a silent source takes up to
    ``read_timeout_s`` (``open_timeout_s`` while connecting) to end.
    """

    def __init__(
        self,
        repository: StreamRepository,
        cameras: CameraService,
        submit: Submit,
        clock: Clock,
        *,
        audit: AuditService | None = None,
        activity: CameraActivity | None = None,
        reconnect_backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
        open_timeout_s: float = 10.0,
        read_timeout_s: float = 10.0,
    ) -> None:
        self._repository = repository
        self._cameras = cameras
        self._submit = submit
        self._clock = clock
        self._audit = audit
        self._activity = activity
        self._options = _ReaderOptions(
            reconnect_backoff_s, max_backoff_s, open_timeout_s, read_timeout_s
        )
        self._readers: dict[str, _StreamReader] = {}
        self._running = False

    async def register(
        self, camera_id: str, url: str, sample_every_s: float, actor: Principal
    ) -> Stream:
        """Add a stream for a camera; it starts at once if readers are running."""
        check_source_url(url)
        _check_sample_every(sample_every_s)
        await self._cameras.get(camera_id)

        stream = Stream(
            id=uuid.uuid4().hex,
            camera_id=camera_id,
            url=url,
            sample_every_s=sample_every_s,
            enabled=True,
            created_at=self._clock.now(),
            state=StreamState.STARTING if self._running else StreamState.STOPPED,
        )
        async with atomically(self._audit):
            await self._repository.add(stream)
            await self._record(
                actor,
                AuditAction.STREAM_REGISTERED,
                stream,
                {"url": display_url(url), "sample_every_s": sample_every_s},
            )
        logger.info(
            "Registered stream %s for camera %s: %s",
            stream.id,
            camera_id,
            display_url(url),
        )

        if self._running:
            self._launch(stream)
        return stream

    async def list_streams(self) -> list[Stream]:
        return await self._repository.all()

    async def get(self, stream_id: str) -> Stream:
        stream = await self._repository.find(stream_id)
        if stream is None:
            raise NotFound(f"no stream with id {stream_id!r}", stream_id=stream_id)
        return stream

    async def remove(self, stream_id: str, actor: Principal) -> None:
        """Stop the stream's reader, then delete the stream."""
        stream = await self.get(stream_id)
        reader = self._readers.pop(stream_id, None)
        if reader is not None:
            reader.halt()
            error = await reader.wait()
            if error is not None:
                logger.error("Reader of stream %s ended with %r", stream_id, error)

        async with atomically(self._audit):
            await self._repository.delete(stream_id)
            await self._record(actor, AuditAction.STREAM_REMOVED, stream, {})
        logger.info("Removed stream %s of camera %s", stream_id, stream.camera_id)

    async def start(self) -> None:
        """Launch a reader for every enabled stream that has not finished."""
        if self._running:
            return
        self._running = True
        for stream in await self._repository.all():
            if stream.enabled and stream.state is not StreamState.FINISHED:
                self._launch(stream)
        logger.info("Stream readers started: %d", len(self._readers))

    async def stop(self) -> None:
        """Stop every reader and wait for its thread; raise what went wrong."""
        self._running = False
        readers = list(self._readers.values())
        self._readers.clear()
        for reader in readers:
            reader.halt()

        errors: list[Exception] = []
        for reader in readers:
            error = await reader.wait()
            if error is None:
                error = await self._mark_stopped(reader)
            if error is not None:
                errors.append(error)
        logger.info("Stream readers stopped: %d", len(readers))
        if errors:
            raise ExceptionGroup("stream readers did not stop cleanly", errors)

    def _launch(self, stream: Stream) -> None:
        reader = _StreamReader(
            stream,
            self._repository,
            self._submit,
            self._clock,
            self._options,
            self._activity,
        )
        self._readers[stream.id] = reader
        reader.start()

    async def _mark_stopped(self, reader: _StreamReader) -> Exception | None:
        if reader.state not in _LIVE_STATES:
            return None
        try:
            await reader.report(StreamState.STOPPED)
        except Exception as exc:
            return exc
        return None

    async def _record(
        self, actor: Principal, action: str, stream: Stream, details: dict[str, object]
    ) -> None:
        if self._audit is None:
            return
        await self._audit.record(
            actor,
            action,
            target=f"stream:{stream.id}",
            details={"camera_id": stream.camera_id, **details},
        )


def _check_sample_every(sample_every_s: float) -> None:
    if not MIN_SAMPLE_EVERY_S <= sample_every_s <= MAX_SAMPLE_EVERY_S:
        raise InvalidInput(
            f"sample_every_s must be between {MIN_SAMPLE_EVERY_S} and "
            f"{MAX_SAMPLE_EVERY_S} seconds",
            sample_every_s=sample_every_s,
        )


@dataclass(frozen=True, slots=True)
class _Opened:
    """The capture thread connected; ``live`` when the source has no end."""

    live: bool


@dataclass(frozen=True, slots=True)
class _Sample:
    frame: SampledFrame
    captured_at: datetime


@dataclass(frozen=True, slots=True)
class _Ended:
    """The capture thread's last word: why it stopped (``None``: the source ended
    or the reader was halted) and whether trying again is pointless."""

    error: str | None
    fatal: bool = False


_Item = _Opened | _Sample | _Ended


class _Handoff:
    """Items from a capture thread to the event loop.

    The thread never waits for the loop: a live source must be read at its
    own rate or its frames go stale in the socket buffer. So while
    ``_WAITING_FRAMES`` frames wait to be submitted, newer ones are dropped;
    the next sample is due one interval later. Control items are never
    dropped. Frames are stamped with their capture time as they arrive.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, clock: Clock) -> None:
        self._loop = loop
        self._clock = clock
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._waiting_frames = 0
        self.dropped = 0

    def put(self, item: SampledFrame | _Opened | _Ended) -> None:
        """Hand over ``item``; callable from any thread."""
        try:
            self._loop.call_soon_threadsafe(self._put, item)
        except RuntimeError:
            # The loop is closed: nobody is left to read the item.
            logger.debug("Capture item %r dropped: the event loop is closed", item)

    async def get(self) -> _Item:
        item = await self._queue.get()
        if isinstance(item, _Sample):
            self._waiting_frames -= 1
        return item

    def _put(self, item: SampledFrame | _Opened | _Ended) -> None:
        if not isinstance(item, SampledFrame):
            self._queue.put_nowait(item)
            return
        if self._waiting_frames >= _WAITING_FRAMES:
            self.dropped += 1
            return
        self._waiting_frames += 1
        self._queue.put_nowait(_Sample(item, self._clock.now()))


@dataclass(slots=True)
class _Connection:
    """What one connection attempt came to."""

    opened: bool = False
    live: bool = False
    ended: _Ended | None = None


class _Halted(Exception):
    """The reader was halted while it was not waiting; it ends at the next wait."""


class _StreamReader:
    """Reads one stream until halted: connect, submit frames, reconnect.

    Halting cancels the task only while it waits (for a frame, a submission
    or the backoff), never in the middle of a repository write: a write cut
    short by cancellation can leave the shared connection inside a
    transaction. A reader halted during a write stops at its next wait.
    """

    def __init__(
        self,
        stream: Stream,
        repository: StreamRepository,
        submit: Submit,
        clock: Clock,
        options: _ReaderOptions,
        activity: CameraActivity | None = None,
    ) -> None:
        self._stream = stream
        self._activity = activity
        self._repository = repository
        self._submit = submit
        self._clock = clock
        self._options = options
        self._sender = Principal(
            PrincipalKind.CAMERA,
            stream.camera_id,
            Role.CAMERA,
            camera_id=stream.camera_id,
        )
        self._halted = threading.Event()
        self._task: asyncio.Task[None] | None = None
        self._waiting = False
        self._last_error = stream.last_error
        self._last_frame_saved: datetime | None = None
        self._refusing = False
        self.state = stream.state

    def start(self) -> None:
        self._task = asyncio.create_task(
            self._run(), name=f"stream-reader-{self._stream.id}"
        )

    def halt(self) -> None:
        """Ask the thread to stop at its next read, and the task at its next wait."""
        self._halted.set()
        if self._task is not None and self._waiting:
            self._task.cancel()

    async def wait(self) -> Exception | None:
        """Wait for the task (and so its thread) to end; return its error, if any."""
        if self._task is None:
            return None
        try:
            await self._task
        except asyncio.CancelledError:
            # The reader's own cancellation ends here; the waiter's never does.
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
        except Exception as exc:
            return exc
        return None

    async def report(self, state: StreamState, error: str | None = None) -> bool:
        """Record a state (and a new error); False when the stream was deleted."""
        self.state = state
        if error is not None:
            self._last_error = error
        return await self._repository.set_state(
            self._stream.id, state, self._last_error
        )

    async def _run(self) -> None:
        try:
            await self._read_until_done()
        except _Halted:
            return
        except Exception as exc:
            logger.exception("Reader of stream %s failed", self._stream.id)
            await self.report(StreamState.FAILED, f"reader failed: {exc!r}")

    async def _read_until_done(self) -> None:
        failures = 0
        if not await self.report(StreamState.STARTING):
            return
        while not self._halted.is_set():
            connection = await self._connect()
            if self._halted.is_set():
                return
            if connection.opened:
                failures = 0
            failures += 1

            state, error = self._verdict(connection)
            still_registered = await self.report(state, error)
            if not still_registered or state is not StreamState.RECONNECTING:
                return
            if self._activity is not None:
                self._activity.stream_reconnected(self._stream.camera_id)
            await self._back_off(failures, error)

    def _verdict(self, connection: _Connection) -> tuple[StreamState, str | None]:
        ended = connection.ended or _Ended("the capture ended without a word")
        if ended.fatal:
            return StreamState.FAILED, ended.error
        if connection.opened and not connection.live and ended.error is None:
            return StreamState.FINISHED, None
        return StreamState.RECONNECTING, ended.error or "the stream ended"

    async def _back_off(self, failures: int, error: str | None) -> None:
        ceiling = min(
            self._options.max_backoff_s,
            self._options.reconnect_backoff_s
            * 2 ** min(failures - 1, _MAX_BACKOFF_EXPONENT),
        )
        # Jitter: cameras behind one recorder that failed together spread out,
        # instead of reconnecting in lockstep.
        delay = ceiling * random.uniform(0.5, 1.0)
        logger.warning(
            "Stream %s reconnects in %.1f s: %s", self._stream.id, delay, error
        )
        await self._wait(lambda: asyncio.sleep(delay))

    async def _wait(self, waiting: Callable[[], Awaitable[T]]) -> T:
        """Await ``waiting()``, which :meth:`halt` may cancel."""
        if self._halted.is_set():
            raise _Halted
        self._waiting = True
        try:
            return await waiting()
        finally:
            self._waiting = False

    async def _connect(self) -> _Connection:
        """One connection: a capture thread, read until it ends."""
        handoff = _Handoff(asyncio.get_running_loop(), self._clock)
        # A daemon thread, so that a source stuck in FFmpeg cannot hold the
        # process open at exit; stop() still waits for it in normal operation.
        thread = threading.Thread(
            target=self._capture,
            args=(handoff,),
            name=f"stream-{self._stream.id}",
            daemon=True,
        )
        thread.start()
        connection = _Connection()
        try:
            await self._consume(handoff, connection)
        finally:
            if connection.ended is None:
                self._halted.set()
                await _drain(handoff)
        if handoff.dropped:
            logger.debug(
                "Stream %s dropped %d frames while submitting lagged",
                self._stream.id,
                handoff.dropped,
            )
        return connection

    async def _consume(self, handoff: _Handoff, connection: _Connection) -> None:
        while connection.ended is None:
            item = await self._wait(handoff.get)
            if isinstance(item, _Ended):
                connection.ended = item
            elif isinstance(item, _Opened):
                connection.opened, connection.live = True, item.live
                await self._on_opened()
            else:
                await self._deliver(item)

    async def _on_opened(self) -> None:
        logger.info(
            "Stream %s of camera %s streaming from %s",
            self._stream.id,
            self._stream.camera_id,
            display_url(self._stream.url),
        )
        await self.report(StreamState.STREAMING)

    async def _deliver(self, sample: _Sample) -> None:
        upload = FrameUpload(
            self._sender,
            self._stream.camera_id,
            sample.frame.jpeg,
            sample.captured_at,
        )
        try:
            await self._wait(lambda: self._submit(upload))
        except EdgeError as exc:
            # One refused frame (poor quality, a full spool) costs one sample;
            # the stream goes on. The first refusal of a run is worth a warning.
            self._note_refusal(exc)
            return
        self._refusing = False
        await self._save_last_frame(sample.captured_at)

    def _note_refusal(self, exc: EdgeError) -> None:
        level = logging.DEBUG if self._refusing else logging.WARNING
        self._refusing = True
        logger.log(
            level,
            "Stream %s frame refused (%s): %s",
            self._stream.id,
            exc.slug,
            exc.detail,
        )

    async def _save_last_frame(self, at: datetime) -> None:
        saved = self._last_frame_saved
        if saved is not None and at - saved < _LAST_FRAME_EVERY:
            return
        self._last_frame_saved = at
        await self._repository.set_last_frame(self._stream.id, at)

    def _capture(self, handoff: _Handoff) -> None:
        """Thread body: open, sample and hand over; always end with :class:`_Ended`."""
        url = self._stream.url
        ended = _Ended(None)
        try:
            ended = self._sample_source(url, handoff)
        except VideoSourceUnavailable as exc:
            ended = _Ended(exc.detail, fatal=is_file_source(url))
        except Exception as exc:
            logger.exception("Capture of stream %s failed", self._stream.id)
            ended = _Ended(f"capture failed: {exc!r}", fatal=is_file_source(url))
        finally:
            handoff.put(ended)

    def _sample_source(self, url: str, handoff: _Handoff) -> _Ended:
        options = self._options
        capture = open_capture(
            url,
            open_timeout_s=options.open_timeout_s,
            read_timeout_s=options.read_timeout_s,
        )
        with capture:
            handoff.put(_Opened(capture.live))
            frames = sample_frames(
                capture,
                self._stream.sample_every_s,
                stop=self._halted,
                realtime=not capture.live,
            )
            for frame in frames:
                handoff.put(frame)
        if capture.live and not self._halted.is_set():
            return _Ended("the stream ended or stopped sending frames")
        return _Ended(None)


async def _drain(handoff: _Handoff) -> None:
    """Wait for a halted capture thread's last item, so no thread outlives us."""
    while not isinstance(await handoff.get(), _Ended):
        pass
