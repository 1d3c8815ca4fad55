"""Imaging: turn an uploaded image into the frame the recognizer is sent (blocking).

:func:`prepare_image` inspects the header, decodes (at a reduced JPEG scale
when the frame is large), brings the pixels to upright 8-bit BGR no larger
than ``max_edge``, applies the quality gates and hands back JPEG bytes: the
original ones when nothing had to change, otherwise a fresh encoding.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import cv2
import numpy as np
from numpy.typing import NDArray

from edge_agent.config import ImagingSettings
from edge_agent.errors import EdgeError
from edge_agent.imaging.decoder import decode_inspected, decode_scale
from edge_agent.imaging.formats import ImageFormat
from edge_agent.imaging.inspect import ImageHeader, inspect_image
from edge_agent.imaging.quality import check_quality, measure

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PreparedImage:
    """A frame ready for the recognizer, and what was done to make it so."""

    header: ImageHeader
    # The size of ``content``: upright and no larger than ``max_edge``.
    width: int
    height: int
    # JPEG: the uploaded bytes when ``normalizations`` is empty, else re-encoded.
    content: bytes = field(repr=False)
    reencoded: bool
    brightness: float
    sharpness: float
    # In order of application: "to_8bit", "dropped_alpha", "gray_to_bgr",
    # "cmyk_to_bgr", "oriented", "scaled", "transcoded".
    normalizations: tuple[str, ...]
    # 1, or the reduced JPEG decoding used (2, 4 or 8: IMREAD_REDUCED_COLOR_n).
    decode_scale: int


def prepare_image(data: bytes, settings: ImagingSettings) -> PreparedImage:
    """Inspect, decode, normalize and check ``data``, or raise the refusal."""
    header = inspect_image(
        data, max_pixels=settings.max_pixels, max_side=settings.max_side
    )
    scale = decode_scale(header, settings.max_edge)
    decoded = decode_inspected(data, header, scale=scale)

    pixels = _fit(decoded.pixels, settings.max_edge)
    normalizations = decoded.conversions + _changes(header, scale, pixels)
    height, width = pixels.shape[:2]

    measures = measure(_gray(pixels))
    check_quality(measures, width, height, settings)

    content = _encode_jpeg(pixels, settings.jpeg_quality) if normalizations else data
    logger.debug(
        "Image prepared as %dx%d: %s", width, height, ", ".join(normalizations)
    )
    return PreparedImage(
        header,
        width,
        height,
        content,
        reencoded=bool(normalizations),
        brightness=measures.brightness,
        sharpness=measures.sharpness,
        normalizations=normalizations,
        decode_scale=scale,
    )


def _fit(pixels: NDArray[np.uint8], max_edge: int) -> NDArray[np.uint8]:
    """Scale down, with area averaging, so the longer edge is ``max_edge``."""
    height, width = pixels.shape[:2]
    longer = max(width, height)
    if longer <= max_edge:
        return pixels

    size = (
        max(1, round(width * max_edge / longer)),
        max(1, round(height * max_edge / longer)),
    )
    return np.asarray(cv2.resize(pixels, size, interpolation=cv2.INTER_AREA))


def _gray(pixels: NDArray[np.uint8]) -> NDArray[np.uint8]:
    return np.asarray(cv2.cvtColor(pixels, cv2.COLOR_BGR2GRAY), dtype=np.uint8)


def _changes(
    header: ImageHeader, scale: int, pixels: NDArray[np.uint8]
) -> tuple[str, ...]:
    changes: list[str] = []
    width, height = header.upright_size
    if scale > 1 or pixels.shape[:2] != (height, width):
        changes.append("scaled")
    if header.format is not ImageFormat.JPEG:
        changes.append("transcoded")
    return tuple(changes)


def _encode_jpeg(pixels: NDArray[np.uint8], quality: int) -> bytes:
    ok, encoded = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise EdgeError("the normalized frame does not encode as JPEG")
    return bytes(encoded)
