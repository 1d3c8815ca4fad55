"""Imaging: decode image bytes with OpenCV. Blocking; call it off the event loop."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edge_agent.errors import UndecodableImage
from edge_agent.imaging.formats import ImageFormat, sniff_format


@dataclass(frozen=True, slots=True)
class DecodedImage:
    format: ImageFormat
    width: int
    height: int
    pixels: np.ndarray


def decode_image(data: bytes) -> DecodedImage:
    """Decode ``data`` to 8-bit BGR pixels, or raise a domain error saying why."""
    image_format = sniff_format(data)
    buffer = np.frombuffer(data, dtype=np.uint8)
    pixels = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
    if pixels is None or pixels.size == 0:
        raise UndecodableImage(
            f"the {image_format.value.upper()} image does not decode",
            format=image_format.value,
        )
    height, width = pixels.shape[:2]
    return DecodedImage(image_format, int(width), int(height), pixels)
