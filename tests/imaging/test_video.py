"""Video sampling on real MJPEG AVI clips written with OpenCV's own writer."""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_agent.errors import ImageTooLarge, InvalidInput, UndecodableImage
from edge_agent.imaging.video import (
    SampledFrame,
    UnsupportedVideo,
    VideoSourceUnavailable,
    display_url,
    open_capture,
    sample_clip,
    sample_frames,
)

FPS = 10.0
FRAMES = 30
SIZE = (160, 120)
# Frame i is a flat grey of level i * STEP, so a sample shows which frame it is.
STEP = 8


def write_clip(path: Path, frames: int = FRAMES, fps: float = FPS) -> Path:
    """Write an MJPEG AVI whose frame i is a flat grey of level i * STEP."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, SIZE)
    assert writer.isOpened(), "this OpenCV build cannot write MJPEG AVI"
    for index in range(frames):
        writer.write(np.full((SIZE[1], SIZE[0], 3), index * STEP, np.uint8))
    writer.release()
    return path


def frame_index(frame: SampledFrame) -> int:
    pixels = cv2.imdecode(np.frombuffer(frame.jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert pixels is not None
    return round(float(pixels.mean()) / STEP)


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    """A three-second 10 fps MJPEG AVI clip."""
    return write_clip(tmp_path / "clip.avi")


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty folder that the tempfile module uses for this test only."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.mark.parametrize(
    ("every_s", "positions"),
    [
        pytest.param(0.5, [0.0, 0.5, 1.0, 1.5, 2.0, 2.5], id="every-half-second"),
        pytest.param(2.0, [0.0, 2.0], id="every-two-seconds"),
        pytest.param(0.25, [0.0, 0.3, 0.5, 0.8, 1.0, 1.3], id="between-frames"),
    ],
)
def test_file_is_sampled_at_the_rate_asked(
    clip: Path, every_s: float, positions: list[float]
) -> None:
    with open_capture(clip.as_uri()) as capture:
        frames = list(sample_frames(capture, every_s, max_frames=len(positions)))

    assert capture.live is False
    assert capture.fps == FPS
    assert capture.frame_count == FRAMES
    assert [round(f.position_s, 3) for f in frames] == positions
    assert [frame_index(f) for f in frames] == [round(p * FPS) for p in positions]


def test_every_frame_is_kept_when_the_interval_is_one_frame(clip: Path) -> None:
    with open_capture(str(clip)) as capture:
        frames = list(sample_frames(capture, 1 / FPS))

    assert [frame_index(f) for f in frames] == list(range(FRAMES))


def test_max_frames_ends_the_iteration(clip: Path) -> None:
    with open_capture(str(clip)) as capture:
        frames = list(sample_frames(capture, 0.1, max_frames=4))

    assert len(frames) == 4


def test_a_set_stop_event_ends_before_the_next_read(clip: Path) -> None:
    stop = threading.Event()
    with open_capture(str(clip)) as capture:
        samples = sample_frames(capture, 0.1, stop=stop)
        first = next(samples)
        stop.set()
        rest = list(samples)

    assert first.position_s == 0.0
    assert rest == []


def test_realtime_plays_a_file_at_its_own_rate(tmp_path: Path) -> None:
    short = write_clip(tmp_path / "short.avi", frames=5)
    started = time.monotonic()
    with open_capture(str(short)) as capture:
        frames = list(sample_frames(capture, 0.1, realtime=True))
    elapsed = time.monotonic() - started

    # Five frames at 10 fps: the last is due 0.4 s after the first.
    assert len(frames) == 5
    assert 0.35 <= elapsed < 2.0


def test_a_missing_file_does_not_open(tmp_path: Path) -> None:
    with pytest.raises(VideoSourceUnavailable):
        open_capture((tmp_path / "absent.avi").as_uri())


def test_clip_is_sampled_and_its_temporary_file_deleted(
    clip: Path, private_tmp: Path
) -> None:
    frames = sample_clip(clip.read_bytes(), 1.0, max_frames=5, max_duration_s=10)

    assert [f.position_s for f in frames] == [0.0, 1.0, 2.0]
    assert [frame_index(f) for f in frames] == [0, 10, 20]
    assert list(private_tmp.iterdir()) == []


def _zeroed_frames(data: bytes) -> bytes:
    """The clip with its header intact and every byte of frame data zeroed."""
    start = data.index(b"movi") + 4
    return data[:start] + bytes(len(data) - start)


@pytest.mark.parametrize(
    ("damage", "error"),
    [
        pytest.param(lambda d: b"not a video at all" * 20, UnsupportedVideo, id="text"),
        pytest.param(lambda d: b"#EXTM3U\n" + d, UnsupportedVideo, id="playlist"),
        pytest.param(lambda d: d[:2000], UnsupportedVideo, id="header-only"),
        pytest.param(_zeroed_frames, UndecodableImage, id="frames-zeroed"),
    ],
)
def test_broken_clip_is_refused_and_deleted(
    clip: Path,
    private_tmp: Path,
    damage: Callable[[bytes], bytes],
    error: type[Exception],
) -> None:
    broken = damage(clip.read_bytes())

    with pytest.raises(error):
        sample_clip(broken, 0.5, max_frames=10, max_duration_s=10)
    assert list(private_tmp.iterdir()) == []


def test_clip_longer_than_allowed_is_refused(clip: Path) -> None:
    with pytest.raises(InvalidInput, match=r"lasts 3\.0 s"):
        sample_clip(clip.read_bytes(), 0.5, max_frames=10, max_duration_s=2)


def test_clip_giving_too_many_frames_is_refused(clip: Path) -> None:
    with pytest.raises(InvalidInput, match="more than 10 frames"):
        sample_clip(clip.read_bytes(), 0.1, max_frames=10, max_duration_s=10)


def test_clip_with_frames_too_large_is_refused(clip: Path) -> None:
    with pytest.raises(ImageTooLarge):
        sample_clip(
            clip.read_bytes(), 0.5, max_frames=10, max_duration_s=10, max_pixels=10_000
        )


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        pytest.param(
            "rtsp://admin:s3cret@10.0.0.5:554/stream1",
            "rtsp://admin:***@10.0.0.5:554/stream1",
            id="userinfo",
        ),
        pytest.param(
            "http://cam.local/video.cgi?user=admin&pwd=s3cret",
            "http://cam.local/video.cgi?user=***&pwd=***",
            id="query",
        ),
        pytest.param("file:///srv/door.avi", "file:///srv/door.avi", id="file"),
    ],
)
def test_display_url_masks_credentials(url: str, shown: str) -> None:
    assert display_url(url) == shown
