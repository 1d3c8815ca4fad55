"""Deterministic synthetic face pictures for demos and tests of the appliance.

Each identity string seeds a drawing of a face on a background: skin tone,
face position and size, eyes, nose, mouth, hair and a smooth background
pattern all derive from a SHA-256 of the identity, so the same name always
gives the same picture on every machine.  ``face_image(identity)`` is the clean
enrollment picture; ``face_image(identity, rng=...)`` is what a camera would
see of that person: shifted by a few pixels, a little brighter or darker, with
sensor noise.  Identity lives in the low-frequency layout of the picture, so it
survives that jitter and the reference recognizer tells people apart reliably.
``side_by_side`` and ``on_canvas`` compose pictures that the reference
recognizer reads as several faces, or as one small face, and
``faceless_image`` one in which it finds none (tests of enrollment).

Run as a script to write enrollment JPEGs: ``python scripts/synthetic_faces.py
--out DIR alice bob``.
"""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

Image = NDArray[np.uint8]

# A coarse grid keeps the background smooth enough that a shift of a few
# pixels barely changes it, yet fine enough to give every identity its own
# layout of light and dark areas.
_BACKGROUND_GRID = (16, 12)
_MAX_SHIFT_PX = 4
_NOISE_SIGMA = 6.0
# The grey of gutters and canvases. Not 128: the appliance takes a JPEG whose
# last blocks are exactly (128, 128, 128) for a starved decode and checks it
# with a second one.
_CANVAS_GREY = 110

# Skin tones in BGR, from dark to light; dark and light tones both occur so
# that the face blob is not the same bright shape in every picture.
_SKIN_TONES = np.array(
    [
        (45, 60, 95),
        (60, 85, 130),
        (80, 110, 165),
        (105, 140, 195),
        (135, 170, 225),
        (170, 200, 240),
    ],
    dtype=np.float64,
)


@dataclass(frozen=True)
class _Face:
    """Everything about one identity's drawing, derived from its seed."""

    centre: tuple[int, int]
    axes: tuple[int, int]
    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    eye_gap: float
    eye_height: float
    eye_size: float
    iris: tuple[int, int, int]
    mouth_width: float
    mouth_height: float
    lips: tuple[int, int, int]


def identity_rng(identity: str) -> np.random.Generator:
    """A generator seeded by the identity, stable across runs and machines."""
    digest = hashlib.sha256(identity.encode("utf-8")).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "big"))


def face_image(
    identity: str,
    *,
    rng: np.random.Generator | None = None,
    size: tuple[int, int] = (640, 480),
) -> Image:
    """Draw ``identity``'s face as a BGR picture of ``size`` (width, height).

    Without ``rng`` this is the clean enrollment picture; with one, it is a
    camera frame of the same person with shift, brightness and noise jitter.
    """
    clean = _clean_image(identity, size)
    if rng is None:
        return clean

    return _jitter(clean, rng)


def encode_jpeg(image: Image, quality: int = 90) -> bytes:
    """Encode a BGR picture as JPEG bytes."""
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("OpenCV could not encode the image as JPEG")

    return bytes(buffer.tobytes())


def side_by_side(pictures: Sequence[Image], gutter_px: int = 32) -> Image:
    """Pictures of the same height next to each other, with uniform grey
    gutters between them: the reference recognizer finds one face in each."""
    height = pictures[0].shape[0]
    gutter = np.full((height, gutter_px, 3), _CANVAS_GREY, dtype=np.uint8)
    parts: list[Image] = []
    for picture in pictures:
        parts += [gutter, picture] if parts else [picture]
    return np.ascontiguousarray(np.hstack(parts))


def on_canvas(picture: Image, size: tuple[int, int]) -> Image:
    """``picture`` centred on a uniform grey canvas of ``size`` (width,
    height): the reference recognizer finds a face of the picture's size."""
    width, height = size
    canvas = np.full((height, width, 3), _CANVAS_GREY, dtype=np.uint8)
    rows, columns = picture.shape[:2]
    top, left = (height - rows) // 2, (width - columns) // 2
    canvas[top : top + rows, left : left + columns] = picture
    return canvas


def faceless_image(size: tuple[int, int] = (320, 240), seed: int = 1) -> Image:
    """Faint grey noise of ``size`` (width, height): sharp enough for the
    appliance's quality gates, yet no face to the reference recognizer."""
    width, height = size
    grey = np.random.default_rng(seed).normal(_CANVAS_GREY, 2.5, (height, width, 1))
    return np.clip(grey, 0, 255).astype(np.uint8).repeat(3, axis=2)


def stranger_identity(rng: np.random.Generator) -> str:
    """A fresh identity that nobody enrolls: ``stranger-<hex>``."""
    return "stranger-" + rng.bytes(6).hex()


def _clean_image(identity: str, size: tuple[int, int]) -> Image:
    width, height = size
    seed_rng = identity_rng(identity)
    canvas = _background(seed_rng, width, height)

    face = _face_layout(seed_rng, width, height)
    _draw_face(canvas, face)
    return canvas


def _background(rng: np.random.Generator, width: int, height: int) -> Image:
    columns, rows = _BACKGROUND_GRID
    base = rng.uniform(60.0, 200.0, size=3)
    grid = base + rng.uniform(-70.0, 70.0, size=(rows, columns, 1))

    # A little colour variation per cell makes the scene look less flat; the
    # shared per-cell term above is what carries identity in grayscale.
    grid = grid + rng.uniform(-15.0, 15.0, size=(rows, columns, 3))
    cells = np.clip(grid, 0, 255).astype(np.uint8)
    smooth = cv2.resize(cells, (width, height), interpolation=cv2.INTER_CUBIC)
    return np.asarray(smooth, dtype=np.uint8)


def _face_layout(rng: np.random.Generator, width: int, height: int) -> _Face:
    half_height = int(height * rng.uniform(0.22, 0.34))
    half_width = int(half_height * rng.uniform(0.68, 0.82))
    centre_x = int(width * rng.uniform(0.3, 0.7))
    centre_y = int(height * rng.uniform(0.45, 0.58))

    skin = _SKIN_TONES[rng.integers(len(_SKIN_TONES))] + rng.uniform(-10, 10, 3)
    return _Face(
        centre=(centre_x, centre_y),
        axes=(half_width, half_height),
        skin=_bgr(skin),
        hair=_bgr(rng.uniform(10, 90, 3)),
        eye_gap=rng.uniform(0.32, 0.46),
        eye_height=rng.uniform(0.18, 0.32),
        eye_size=rng.uniform(0.11, 0.17),
        iris=_bgr(rng.uniform(20, 140, 3)),
        mouth_width=rng.uniform(0.28, 0.48),
        mouth_height=rng.uniform(0.08, 0.18),
        lips=_bgr(rng.uniform(40, 110, 3) + np.array([0.0, 0.0, 60.0])),
    )


def _bgr(values: NDArray[np.float64]) -> tuple[int, int, int]:
    clipped = np.clip(values, 0, 255).astype(int)
    return int(clipped[0]), int(clipped[1]), int(clipped[2])


def _draw_face(canvas: Image, face: _Face) -> None:
    (cx, cy), (ax, ay) = face.centre, face.axes
    hair_axes = (int(ax * 1.08), int(ay * 1.05))
    cv2.ellipse(canvas, (cx, cy - ay // 8), hair_axes, 0, 180, 360, face.hair, -1)
    cv2.ellipse(canvas, (cx, cy), (ax, ay), 0, 0, 360, face.skin, -1, cv2.LINE_AA)

    _draw_eyes(canvas, face)
    _draw_nose_and_mouth(canvas, face)


def _draw_eyes(canvas: Image, face: _Face) -> None:
    (cx, cy), (ax, ay) = face.centre, face.axes
    eye_y = int(cy - ay * face.eye_height)
    eye_rx = max(3, int(ax * face.eye_size))
    eye_ry = max(2, int(eye_rx * 0.6))

    for side in (-1, 1):
        eye_x = int(cx + side * ax * face.eye_gap)
        cv2.ellipse(
            canvas, (eye_x, eye_y), (eye_rx, eye_ry), 0, 0, 360, (235, 240, 240), -1
        )
        cv2.circle(canvas, (eye_x, eye_y), max(2, eye_ry - 1), face.iris, -1)
        cv2.circle(canvas, (eye_x, eye_y), max(1, eye_ry // 3), (10, 10, 10), -1)

        brow_y = eye_y - 2 * eye_ry - 4
        brow = (eye_x - eye_rx, brow_y), (eye_x + eye_rx, brow_y - side * 2)
        cv2.line(canvas, *brow, face.hair, max(2, eye_ry // 2), cv2.LINE_AA)


def _draw_nose_and_mouth(canvas: Image, face: _Face) -> None:
    (cx, cy), (ax, ay) = face.centre, face.axes
    shade = tuple(int(c * 0.7) for c in face.skin)
    nose = np.array(
        [
            (cx, cy - ay // 6),
            (cx - ax // 8, cy + ay // 6),
            (cx + ax // 8, cy + ay // 6),
        ],
        dtype=np.int32,
    )
    cv2.polylines(canvas, [nose], True, shade, 2, cv2.LINE_AA)

    mouth_centre = (cx, int(cy + ay * 0.48))
    mouth_axes = (int(ax * face.mouth_width), max(3, int(ay * face.mouth_height)))
    cv2.ellipse(canvas, mouth_centre, mouth_axes, 0, 0, 180, face.lips, -1, cv2.LINE_AA)


def _jitter(clean: Image, rng: np.random.Generator) -> Image:
    height, width = clean.shape[:2]
    dx, dy = rng.integers(-_MAX_SHIFT_PX, _MAX_SHIFT_PX + 1, size=2)
    shift = np.array([[1.0, 0.0, float(dx)], [0.0, 1.0, float(dy)]])
    moved = cv2.warpAffine(
        clean, shift, (width, height), borderMode=cv2.BORDER_REPLICATE
    )

    frame = moved.astype(np.float32)
    frame *= rng.uniform(0.9, 1.1)
    frame += rng.uniform(-12.0, 12.0)
    frame += _sensor_noise(rng, width, height)
    np.clip(frame, 0, 255, out=frame)
    return frame.astype(np.uint8)


def _sensor_noise(rng: np.random.Generator, width: int, height: int) -> NDArray[Any]:
    # Drawing noise at half resolution gives it a two-pixel grain, as a camera
    # with demosaicing and compression would, and costs a quarter of the draws.
    small = (max(1, height // 2), max(1, width // 2), 3)
    noise = rng.standard_normal(small, dtype=np.float32) * _NOISE_SIGMA
    return cv2.resize(noise, (width, height), interpolation=cv2.INTER_NEAREST)


def main(argv: list[str] | None = None) -> None:
    """Write one enrollment JPEG per identity into a folder."""
    parser = argparse.ArgumentParser(description="Write synthetic enrollment JPEGs.")
    parser.add_argument("identities", nargs="+", metavar="IDENTITY")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    args = parser.parse_args(argv)

    args.out.mkdir(parents=True, exist_ok=True)
    for identity in args.identities:
        picture = face_image(identity, size=(args.width, args.height))
        path = args.out / f"{identity}.jpg"
        path.write_bytes(encode_jpeg(picture))
        print(path)


if __name__ == "__main__":
    main()
