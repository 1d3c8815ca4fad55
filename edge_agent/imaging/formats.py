"""Imaging: tell the image format from the leading bytes, never the Content-Type."""

from __future__ import annotations

import enum

from edge_agent.errors import UnsupportedImage


class ImageFormat(enum.StrEnum):
    JPEG = "jpeg"
    PNG = "png"
    WEBP = "webp"


# Signatures: JPEG SOI marker (ITU T.81, B.1.1.3), the PNG signature
# (RFC 2083, 3.1) and the RIFF/WEBP container header.
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def sniff_format(data: bytes) -> ImageFormat:
    """Name the format of ``data`` or raise :class:`UnsupportedImage`."""
    if data[:3] == b"\xff\xd8\xff":
        return ImageFormat.JPEG
    if data[:8] == _PNG_SIGNATURE:
        return ImageFormat.PNG
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ImageFormat.WEBP
    raise UnsupportedImage(
        "the body is not a JPEG, PNG or WebP image", received_bytes=len(data)
    )
