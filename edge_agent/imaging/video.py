"""Imaging: sample frames from video sources with OpenCV's FFmpeg backend (blocking).

A source is an RTSP or HTTP(S) URL (MJPEG, HLS, a file served over HTTP), a
``file://`` URL or a local path. :func:`sample_frames` grabs every frame the
source sends, so a live source never falls behind, and keeps one frame per
sampling interval, encoded as JPEG. Every function here blocks: run it in a
worker thread, never on the event loop.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from urllib.request import url2pathname

import cv2

from edge_agent.errors import (
    ImageTooLarge,
    InvalidInput,
    Unavailable,
    UndecodableImage,
    UnsupportedImage,
)

logger = logging.getLogger(__name__)

DEFAULT_JPEG_QUALITY = 90

# Container timestamps are milliseconds in floating point; a frame within a
# microsecond of its slot counts as on time.
_SLOT_SLACK_S = 1e-6

# Leading bytes of the clip containers accepted for upload, with the file
# suffix that makes FFmpeg's format probe agree: RIFF/AVI, ISO BMFF (MP4, its
# "ftyp" box at offset 4) and EBML (Matroska, WebM). Anything else is refused
# before FFmpeg sees it, so an uploaded playlist (HLS, ffconcat) can never
# make the appliance open other files or URLs on a client's behalf.
_QUICKTIME_BOXES = (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip")
_EBML_MAGIC = b"\x1a\x45\xdf\xa3"


class VideoSourceUnavailable(Unavailable):
    """A stream source that does not open, or stops sending frames."""

    slug = "video-source-unavailable"
    title = "Video source unavailable"


class UnsupportedVideo(UnsupportedImage):
    """An uploaded clip in a container this appliance does not read."""

    slug = "unsupported-video"
    title = "Unsupported video format"


@dataclass(frozen=True, slots=True)
class SampledFrame:
    """One kept frame: JPEG bytes, and its position in seconds from the first frame."""

    jpeg: bytes = field(repr=False)
    position_s: float


@dataclass(slots=True)
class Capture:
    """An open video source and what its container announces about itself."""

    video: cv2.VideoCapture
    label: str
    # A network source that announces no length: a camera, not a file.
    live: bool
    fps: float
    frame_count: int
    width: int
    height: int

    @property
    def duration_s(self) -> float | None:
        if self.frame_count <= 0 or self.fps <= 0:
            return None
        return self.frame_count / self.fps

    def close(self) -> None:
        self.video.release()

    def __enter__(self) -> Capture:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def display_url(url: str) -> str:
    """``url`` safe to log and show: password and query values masked.

    Cameras commonly take their credentials in the URL, either as userinfo
    (``rtsp://admin:secret@cam/``) or as query parameters (``?pwd=secret``).
    """
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        host = netloc.rpartition("@")[2]
        netloc = f"{parts.username or ''}:***@{host}"
    query = parts.query
    if query:
        masked = [(name, "***") for name, _ in parse_qsl(query, keep_blank_values=True)]
        query = urlencode(masked, safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def is_file_source(url: str) -> bool:
    """True for a ``file://`` URL or a plain path: a source that ends."""
    return urlsplit(url).scheme in ("", "file")


def open_capture(
    url: str, *, open_timeout_s: float = 10.0, read_timeout_s: float = 10.0
) -> Capture:
    """Open ``url`` with the FFmpeg backend, or raise :class:`VideoSourceUnavailable`.

    The timeouts bound how long connecting, and then each read, may block;
    without them a camera that goes silent would hold its reader forever.
    """
    label = display_url(url)
    params = [
        cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
        round(open_timeout_s * 1000),
        cv2.CAP_PROP_READ_TIMEOUT_MSEC,
        round(read_timeout_s * 1000),
    ]
    try:
        video = cv2.VideoCapture(_capture_target(url), cv2.CAP_FFMPEG, params)
    except cv2.error as exc:
        raise VideoSourceUnavailable(f"cannot open video source {label}") from exc
    if not video.isOpened():
        video.release()
        raise VideoSourceUnavailable(f"cannot open video source {label}")

    frame_count = int(_property(video, cv2.CAP_PROP_FRAME_COUNT))
    capture = Capture(
        video=video,
        label=label,
        live=frame_count <= 0 and not is_file_source(url),
        fps=_property(video, cv2.CAP_PROP_FPS),
        frame_count=frame_count,
        width=int(_property(video, cv2.CAP_PROP_FRAME_WIDTH)),
        height=int(_property(video, cv2.CAP_PROP_FRAME_HEIGHT)),
    )
    logger.debug(
        "Opened video source %s: %dx%d at %.1f fps, %d frames",
        label,
        capture.width,
        capture.height,
        capture.fps,
        capture.frame_count,
    )
    return capture


def sample_frames(
    capture: Capture,
    every_s: float,
    max_frames: int | None = None,
    *,
    stop: threading.Event | None = None,
    realtime: bool = False,
    jpeg_quality: int = DEFAULT_JPEG_QUALITY,
) -> Iterator[SampledFrame]:
    """Grab every frame of ``capture``; yield the first of each ``every_s`` slot.

    Positions count from the first frame: from the container's timestamps
    when they advance, else from the frame number and the frame rate, and from
    the wall clock for a live source. ``realtime`` paces a file to its own
    frame rate, so that it plays like a camera. Iteration ends at the end of
    the source (or the first failed read, which OpenCV does not tell apart),
    after ``max_frames`` frames (``None``: no limit), or once ``stop`` is set,
    which is checked before every read.
    """
    if every_s <= 0:
        raise ValueError("every_s must be positive")
    timeline = _Timeline(capture)
    due = 0.0
    kept = 0

    while (max_frames is None or kept < max_frames) and not _is_set(stop):
        if not capture.video.grab():
            return
        position = timeline.advance()
        if realtime:
            timeline.wait_until(position, stop)
        if position + _SLOT_SLACK_S < due:
            continue

        jpeg = _retrieve_jpeg(capture, jpeg_quality)
        if jpeg is None:
            continue
        yield SampledFrame(jpeg, position)
        kept += 1
        due = _next_slot(due, position, every_s)


def sample_clip(
    data: bytes,
    every_s: float,
    max_frames: int,
    max_duration_s: float,
    *,
    max_pixels: int | None = None,
    jpeg_quality: int = DEFAULT_JPEG_QUALITY,
) -> list[SampledFrame]:
    """Sample an uploaded clip, or refuse it with a domain error saying why.

    OpenCV reads only from a path, so the clip is written to a temporary file,
    deleted again before this returns. Refused: a container other than AVI,
    MP4/QuickTime or Matroska/WebM, a clip FFmpeg cannot open, one longer than
    ``max_duration_s``, larger than ``max_pixels``, one that would give more
    than ``max_frames`` frames, and one with no frame that decodes.
    """
    suffix = _clip_suffix(data)
    with _temporary_file(data, suffix) as path, _open_clip(path) as capture:
        _check_clip(capture, every_s, max_frames, max_duration_s, max_pixels)
        frames = _read_clip(capture, every_s, max_frames, max_duration_s, jpeg_quality)
    if not frames:
        raise UndecodableImage("the video has no frame that decodes")
    return frames


def _capture_target(url: str) -> str:
    """What to hand OpenCV: a local path for ``file://`` URLs, else the URL."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        return url2pathname(parts.path)
    return url


def _property(video: cv2.VideoCapture, prop: int) -> float:
    value = float(video.get(prop))
    return value if math.isfinite(value) else 0.0


def _is_set(stop: threading.Event | None) -> bool:
    return stop is not None and stop.is_set()


def _retrieve_jpeg(capture: Capture, quality: int) -> bytes | None:
    ok, pixels = capture.video.retrieve()
    if not ok or pixels is None or pixels.size == 0:
        logger.debug("Frame of %s grabbed but does not decode", capture.label)
        return None
    ok, encoded = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return encoded.tobytes() if ok else None


def _next_slot(due: float, position: float, every_s: float) -> float:
    """The start of the first slot after the one ``position`` falls in."""
    missed = math.floor((position + _SLOT_SLACK_S - due) / every_s)
    return due + (missed + 1) * every_s


class _Timeline:
    """The position, in seconds from the first frame, of each frame grabbed."""

    def __init__(self, capture: Capture) -> None:
        self._capture = capture
        self._index = -1
        self._started: float | None = None
        self._origin_ms: float | None = None
        self._last_ms = -math.inf
        self._last = 0.0

    def advance(self) -> float:
        """Account for one more grabbed frame; return its position."""
        self._index += 1
        if self._started is None:
            self._started = time.monotonic()
        if self._capture.live:
            return self._elapsed()
        position = max(self._last, self._file_position())
        self._last = position
        return position

    def wait_until(self, position: float, stop: threading.Event | None) -> None:
        """Sleep until ``position`` seconds after the first frame, or until stopped."""
        delay = position - self._elapsed()
        if delay <= 0:
            return
        if stop is None:
            time.sleep(delay)
        else:
            stop.wait(delay)

    def _elapsed(self) -> float:
        return 0.0 if self._started is None else time.monotonic() - self._started

    def _file_position(self) -> float:
        stamp_ms = _property(self._capture.video, cv2.CAP_PROP_POS_MSEC)
        # A container timestamp counts only while it advances: some demuxers
        # report 0 or repeat the last value when the stream carries none.
        if self._index == 0 or stamp_ms > self._last_ms:
            self._last_ms = stamp_ms
            if self._origin_ms is None:
                self._origin_ms = stamp_ms
            return (stamp_ms - self._origin_ms) / 1000
        if self._capture.fps > 0:
            return self._index / self._capture.fps
        return self._elapsed()


def _clip_suffix(data: bytes) -> str:
    if data[:4] == b"RIFF" and data[8:12] == b"AVI ":
        return ".avi"
    if data[4:8] in _QUICKTIME_BOXES:
        return ".mp4"
    if data[:4] == _EBML_MAGIC:
        return ".mkv"
    raise UnsupportedVideo(
        "the body is not an AVI, MP4, QuickTime, Matroska or WebM video",
        received_bytes=len(data),
    )


@contextmanager
def _temporary_file(data: bytes, suffix: str) -> Iterator[Path]:
    handle, name = tempfile.mkstemp(prefix="clip-", suffix=suffix)
    path = Path(name)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        yield path
    finally:
        path.unlink(missing_ok=True)


def _open_clip(path: Path) -> Capture:
    try:
        return open_capture(str(path))
    except VideoSourceUnavailable as exc:
        raise UnsupportedVideo("the video does not open") from exc


def _check_clip(
    capture: Capture,
    every_s: float,
    max_frames: int,
    max_duration_s: float,
    max_pixels: int | None,
) -> None:
    """Refuse from the container header alone, before any frame is decoded."""
    pixels = capture.width * capture.height
    if max_pixels is not None and pixels > max_pixels:
        raise ImageTooLarge(
            f"the video's {capture.width}x{capture.height} frames exceed "
            f"{max_pixels} pixels",
            max_pixels=max_pixels,
        )
    duration = capture.duration_s
    if duration is None:
        return
    if duration > max_duration_s:
        raise InvalidInput(
            f"the video lasts {duration:.1f} s, more than {max_duration_s:g} s",
            duration_s=round(duration, 3),
            max_duration_s=max_duration_s,
        )
    # Frames start at 0, every_s, 2 * every_s, ... up to the end of the clip.
    if math.ceil(duration / every_s - _SLOT_SLACK_S) > max_frames:
        raise _too_many_frames(max_frames)


def _read_clip(
    capture: Capture,
    every_s: float,
    max_frames: int,
    max_duration_s: float,
    jpeg_quality: int,
) -> list[SampledFrame]:
    """Every sampled frame, checked again: headers may understate a clip."""
    frames: list[SampledFrame] = []
    samples = sample_frames(capture, every_s, max_frames + 1, jpeg_quality=jpeg_quality)
    for frame in samples:
        if frame.position_s > max_duration_s:
            raise InvalidInput(
                f"the video lasts more than {max_duration_s:g} s",
                max_duration_s=max_duration_s,
            )
        frames.append(frame)
    if len(frames) > max_frames:
        raise _too_many_frames(max_frames)
    return frames


def _too_many_frames(max_frames: int) -> InvalidInput:
    return InvalidInput(
        f"sampling the video gives more than {max_frames} frames; sample less often",
        max_frames=max_frames,
    )
