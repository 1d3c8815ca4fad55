"""Imaging: decode image bytes to upright 8-bit BGR pixels with OpenCV (blocking).

Decoding is steered by the header :mod:`edge_agent.imaging.inspect` read
first, so nothing is decoded that the limits refuse:

- JPEG decodes with ``IMREAD_COLOR`` (3-channel BGR for grey, YCbCr, RGB,
  CMYK and YCCK alike), at 1/2, 1/4 or 1/8 scale when the frame is that much
  larger than needed (libjpeg scales in the DCT, which is much cheaper);
- PNG and WebP decode with ``IMREAD_UNCHANGED``, so 16-bit samples and alpha
  arrive as stored and are converted here;
- orientation is ignored by OpenCV (``IMREAD_IGNORE_ORIENTATION``) and applied
  here from the header, exactly once, whatever the format. OpenCV 5 applies
  the EXIF orientation itself for ``IMREAD_COLOR``, ``IMREAD_GRAYSCALE`` and
  the reduced flags, but not for ``IMREAD_UNCHANGED``; doing it here keeps the
  header the one place the orientation is read.

Alpha is dropped by compositing over white: a cut-out portrait keeps a plain
background instead of whatever colour its transparent pixels happen to hold.

OpenCV returns pixels for a JPEG that libjpeg decoded only in part, warning
on stderr alone. Two checks catch such frames:

- :func:`check_jpeg_scans` walks the markers before decoding. A file cut
  short and closed with an EOI so that scans are missing, a restart marker
  out of order, or a flipped bit that forms a marker fails there.
- When libjpeg runs out of coded data it gives every later block zero
  coefficients, which decode to exactly (128, 128, 128). So when the last
  16x16 pixels are all that mid-grey, the frame is decoded once more with
  extra bytes put before its EOI marker: a complete scan never reaches them
  and decodes the same, a starved one reads them and decodes differently,
  and is refused. Only such frames pay for the second decode (and leave
  libjpeg's warning about the extra bytes on stderr).

Three limits remain. A flipped bit that derails the Huffman decoder, which
then falls back into step, is not seen: libjpeg itself mostly does not see it
either, and when it does it says so only on stderr; finding it here would
take a second Huffman decode of every frame. A progressive file cut inside
its last scan (for OpenCV's encoder, past about 40% of the file) decodes
whole but without the last refinement bit below the cut, and is accepted.
Lossy WebP carries no checksum, so damage inside its coded data is not seen;
PNG checks a CRC per chunk and does not decode when damaged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from edge_agent.config import ImagingSettings
from edge_agent.errors import UndecodableImage
from edge_agent.imaging.formats import ImageFormat
from edge_agent.imaging.inspect import (
    ColourModel,
    ImageHeader,
    check_jpeg_scans,
    inspect_image,
)

_IGNORE_ORIENTATION = cv2.IMREAD_IGNORE_ORIENTATION
_JPEG_FLAGS = {
    1: cv2.IMREAD_COLOR,
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}
# libjpeg's reduced decoding (scaled IDCT); the largest scale first.
_SCALES = (8, 4, 2)
# 16-bit samples to 8: 65535 / 255.
_SIXTEEN_TO_EIGHT = 1 / 257
# The pixels of the last macroblock looked at for libjpeg's grey fill.
_TAIL_SIZE = 16
_GREY_FILL = 128
# Bytes that are coded data to a starved decoder: any value but 0xFF (which
# would start a marker), in no regular pattern.
_PROBE_BYTES = bytes(range(1, 255))


@dataclass(frozen=True, slots=True)
class DecodedImage:
    """Upright 8-bit BGR pixels, and what it took to get them."""

    format: ImageFormat
    width: int
    height: int
    pixels: NDArray[np.uint8]
    # The JPEG decoding scale: 1, or 2, 4, 8 for libjpeg's reduced sizes.
    scale: int = 1
    # Conversions applied, in order: "to_8bit", "dropped_alpha", "gray_to_bgr",
    # "cmyk_to_bgr", "oriented".
    conversions: tuple[str, ...] = ()


def decode_image(
    data: bytes, *, settings: ImagingSettings | None = None
) -> DecodedImage:
    """Decode ``data`` to upright 8-bit BGR pixels, or raise a domain error saying why.

    The header is inspected first, against the limits of ``settings`` (the
    defaults when none are given), so a decompression bomb never decodes.
    """
    limits = settings or ImagingSettings()
    header = inspect_image(data, max_pixels=limits.max_pixels, max_side=limits.max_side)
    return decode_inspected(data, header)


def decode_scale(header: ImageHeader, max_edge: int) -> int:
    """The reduced JPEG scale that still leaves the longer edge ``max_edge`` or more."""
    if header.format is not ImageFormat.JPEG:
        return 1
    longer = max(header.width, header.height)
    return next((scale for scale in _SCALES if longer >= scale * max_edge), 1)


def decode_inspected(
    data: bytes, header: ImageHeader, *, scale: int = 1
) -> DecodedImage:
    """Decode ``data``, whose header is ``header``, at ``1/scale`` of its size."""
    check_jpeg_scans(data, header)
    raw = _imdecode(data, header, scale)
    _check_decoded_size(raw, header, scale)
    _check_complete(data, raw, header, scale)

    pixels, conversions = _to_bgr8(raw, header)
    if header.orientation != 1:
        pixels = orient(pixels, header.orientation)
        conversions += ("oriented",)

    height, width = pixels.shape[:2]
    return DecodedImage(header.format, width, height, pixels, scale, conversions)


def _imdecode(data: bytes, header: ImageHeader, scale: int) -> NDArray[Any]:
    if header.format is ImageFormat.JPEG:
        flags = _jpeg_flags(scale)
    else:
        flags = cv2.IMREAD_UNCHANGED

    try:
        pixels = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
    except cv2.error as exc:
        raise _does_not_decode(header) from exc

    if pixels is None or pixels.size == 0:
        raise _does_not_decode(header)
    return np.asarray(pixels)


def _jpeg_flags(scale: int) -> int:
    return _JPEG_FLAGS[scale] | _IGNORE_ORIENTATION


def _does_not_decode(header: ImageHeader) -> UndecodableImage:
    name = header.format.value.upper()
    return UndecodableImage(
        f"the {name} image does not decode", format=header.format.value
    )


def _check_decoded_size(pixels: NDArray[Any], header: ImageHeader, scale: int) -> None:
    # libjpeg rounds reduced sizes up; a mismatch means the decoder read a
    # different header than the inspector did, and its limits do not hold.
    expected = (-(-header.height // scale), -(-header.width // scale))
    if pixels.shape[:2] != expected:
        raise UndecodableImage(
            f"the {header.format.value.upper()} image decodes to another size "
            "than its header gives",
            format=header.format.value,
        )


def _check_complete(
    data: bytes, pixels: NDArray[Any], header: ImageHeader, scale: int
) -> None:
    # Zero coefficients decode to mid-grey only for grey, YCbCr and RGB
    # frames; CMYK and YCCK go without this check.
    if header.format is not ImageFormat.JPEG or header.colour in (
        ColourModel.CMYK,
        ColourModel.YCCK,
    ):
        return

    tail = max(2, _TAIL_SIZE // scale)
    if np.all(pixels[-tail:, -tail:] == _GREY_FILL) and _starved(data, pixels, scale):
        raise UndecodableImage(
            "the JPEG image decodes only in part: its coded data runs out "
            "before the last blocks",
            format="jpeg",
        )


def _starved(data: bytes, pixels: NDArray[Any], scale: int) -> bool:
    """Whether libjpeg ran out of coded data: it reads bytes put before EOI.

    A complete scan is decoded before the extra bytes are reached, so the
    pixels stay the same (libjpeg skips the bytes, warning on stderr); a scan
    that ran short reads them as coded data and decodes differently.
    """
    end = len(data.rstrip(b"\x00")) - 2
    while data[end - 1] == 0xFF:
        end -= 1
    probe = data[:end] + _PROBE_BYTES + data[end:]

    try:
        again = cv2.imdecode(np.frombuffer(probe, dtype=np.uint8), _jpeg_flags(scale))
    except cv2.error:
        return True
    return again is None or not np.array_equal(again, pixels)


def _to_bgr8(
    pixels: NDArray[Any], header: ImageHeader
) -> tuple[NDArray[np.uint8], tuple[str, ...]]:
    """Bring any decoded layout to 3-channel 8-bit BGR; name each conversion."""
    conversions: list[str] = []
    if pixels.dtype == np.uint16:
        pixels = cv2.convertScaleAbs(pixels, alpha=_SIXTEEN_TO_EIGHT)
        conversions.append("to_8bit")
    elif pixels.dtype != np.uint8:
        raise UndecodableImage(
            f"the image decodes to {pixels.dtype} samples", format=header.format.value
        )

    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    if channels in (2, 4):
        pixels = _over_white(pixels[..., :-1], pixels[..., -1])
        conversions.append("dropped_alpha")
        channels -= 1

    if channels == 1 or header.colour in (ColourModel.GRAY, ColourModel.GRAY_ALPHA):
        pixels = _gray_to_bgr(pixels)
        conversions.append("gray_to_bgr")
    elif header.colour in (ColourModel.CMYK, ColourModel.YCCK):
        # libjpeg yields CMYK and OpenCV turns it to BGR, reading the inverted
        # samples Adobe writes; the conversion is named all the same.
        conversions.append("cmyk_to_bgr")
    return np.ascontiguousarray(pixels, dtype=np.uint8), tuple(conversions)


def _over_white(colour: NDArray[np.uint8], alpha: NDArray[np.uint8]) -> NDArray[Any]:
    """Composite ``colour`` over white by ``alpha``, rounding to nearest."""
    weight = alpha[..., np.newaxis].astype(np.uint16)
    blended = (colour.astype(np.uint16) * weight + 255 * (255 - weight) + 127) // 255
    return blended.astype(np.uint8)


def _gray_to_bgr(pixels: NDArray[Any]) -> NDArray[Any]:
    if pixels.ndim == 3 and pixels.shape[2] == 3:
        return pixels
    return np.asarray(cv2.cvtColor(pixels, cv2.COLOR_GRAY2BGR))


def orient(pixels: NDArray[np.uint8], orientation: int) -> NDArray[np.uint8]:
    """Turn stored pixels upright by an EXIF orientation (EXIF 2.3, 4.6.4 A).

    The value says where the stored first row and column belong: 2 mirrors
    left to right, 3 turns half round, 4 mirrors top to bottom, 5 transposes,
    6 turns a quarter clockwise, 7 transposes across the other diagonal and
    8 turns a quarter anticlockwise.
    """
    turned: Any
    if orientation == 2:
        turned = cv2.flip(pixels, 1)
    elif orientation == 3:
        turned = cv2.rotate(pixels, cv2.ROTATE_180)
    elif orientation == 4:
        turned = cv2.flip(pixels, 0)
    elif orientation == 5:
        turned = cv2.transpose(pixels)
    elif orientation == 6:
        turned = cv2.rotate(pixels, cv2.ROTATE_90_CLOCKWISE)
    elif orientation == 7:
        turned = cv2.flip(cv2.transpose(pixels), -1)
    elif orientation == 8:
        turned = cv2.rotate(pixels, cv2.ROTATE_90_COUNTERCLOCKWISE)
    else:
        turned = pixels
    return np.asarray(turned, dtype=np.uint8)
