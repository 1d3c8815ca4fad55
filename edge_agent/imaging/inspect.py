"""Imaging: read an image's container header, never its pixels, and refuse early.

:func:`inspect_image` reads only the leading structure of a JPEG, PNG or WebP
file (the segments before the first scan; the chunk headers), never the coded
image data, however many pixels the header claims: cheap enough to run on the
event loop before a frame is queued. It refuses decompression bombs
(:class:`ImageTooLarge`), files cut short (:class:`TruncatedImage`) and broken
containers (:class:`UndecodableImage`).

:func:`check_jpeg_scans` is the one reader here that goes past the header: it
walks the markers between a JPEG's scans (not the coded data inside them) to
prove that every scan the frame needs is present before anything decodes it.
"""

from __future__ import annotations

import enum
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from edge_agent.errors import ImageTooLarge, TruncatedImage, UndecodableImage
from edge_agent.imaging.formats import ImageFormat, sniff_format


class ColourModel(enum.StrEnum):
    """How the stored samples are to be read."""

    GRAY = "gray"
    GRAY_ALPHA = "gray_alpha"
    PALETTE = "palette"
    RGB = "rgb"
    RGBA = "rgba"
    YCBCR = "ycbcr"
    CMYK = "cmyk"
    YCCK = "ycck"


@dataclass(frozen=True, slots=True)
class ImageHeader:
    """What the container says about an image, learnt without decoding a pixel.

    ``width`` and ``height`` are the stored size; an EXIF ``orientation`` of 5
    to 8 turns the image a quarter, so it is shown ``height`` wide.
    ``components`` counts the stored samples per pixel: JPEG frame components
    (1 grey, 3 YCbCr or RGB, 4 CMYK or YCCK), PNG samples of the colour type
    (a palette index is one), WebP 3 or 4.
    """

    format: ImageFormat
    width: int
    height: int
    components: int
    colour: ColourModel
    bit_depth: int = 8
    has_alpha: bool = False
    progressive: bool = False
    orientation: int = 1

    @property
    def upright_size(self) -> tuple[int, int]:
        """Width and height once the EXIF orientation is applied."""
        if self.orientation >= 5:
            return self.height, self.width
        return self.width, self.height


@dataclass(frozen=True, slots=True)
class _Limits:
    max_pixels: int
    max_side: int


def inspect_image(data: bytes, *, max_pixels: int, max_side: int) -> ImageHeader:
    """Read the header of ``data``, or raise the domain error that refuses it.

    Raises :class:`UnsupportedImage` for anything but JPEG, PNG and WebP,
    :class:`ImageTooLarge` when the claimed size passes a limit,
    :class:`TruncatedImage` when the file ends before its image does and
    :class:`UndecodableImage` when the container is malformed.
    """
    image_format = sniff_format(data)
    limits = _Limits(max_pixels, max_side)
    if image_format is ImageFormat.JPEG:
        return _inspect_jpeg(data, limits)
    if image_format is ImageFormat.PNG:
        return _inspect_png(data, limits)
    return _inspect_webp(data, limits)


def _check_size(
    image_format: ImageFormat, width: int, height: int, limits: _Limits
) -> None:
    name = image_format.value.upper()
    if width <= 0 or height <= 0:
        raise UndecodableImage(
            f"the {name} header gives a size of {width}x{height}",
            format=image_format.value,
        )

    if max(width, height) > limits.max_side or width * height > limits.max_pixels:
        raise ImageTooLarge(
            f"the {name} header claims {width}x{height} pixels, more than the "
            f"{limits.max_side} per side or {limits.max_pixels} in all allowed",
            format=image_format.value,
            width=width,
            height=height,
        )


# --- EXIF (EXIF 2.3, 4.6.2: a TIFF header, then IFD0) --------------------------

_ORIENTATION_TAG = 0x0112
_TIFF_SHORT = 3


def _exif_orientation(tiff: bytes) -> int:
    """The Orientation of IFD0 (EXIF 2.3, 4.6.4 A), or 1 when absent or invalid."""
    if len(tiff) < 8:
        return 1
    if tiff[:4] == b"II*\x00":
        order = "<"
    elif tiff[:4] == b"MM\x00*":
        order = ">"
    else:
        return 1

    (ifd,) = struct.unpack_from(order + "I", tiff, 4)
    if ifd + 2 > len(tiff):
        return 1

    (count,) = struct.unpack_from(order + "H", tiff, ifd)
    for entry in range(ifd + 2, min(ifd + 2 + 12 * count, len(tiff) - 11), 12):
        tag, kind, number = struct.unpack_from(order + "HHI", tiff, entry)
        if tag == _ORIENTATION_TAG and kind == _TIFF_SHORT and number == 1:
            (value,) = struct.unpack_from(order + "H", tiff, entry + 8)
            return value if 1 <= value <= 8 else 1
    return 1


# --- JPEG (ITU T.81, Annex B) ----------------------------------------------------

_SOI, _EOI, _SOS, _DRI, _APP1, _APP14 = 0xD8, 0xD9, 0xDA, 0xDD, 0xE1, 0xEE
_RST0, _RST7, _TEM = 0xD0, 0xD7, 0x01
# SOF0..SOF15 share C0..CF with DHT (C4), JPG (C8) and DAC (CC); B.1.1.3.
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Progressive DCT frames, Huffman or arithmetic coded, differential or not.
_PROGRESSIVE_SOF = frozenset({0xC2, 0xC6, 0xCA, 0xCE})
_LOSSLESS_SOF = frozenset({0xC3, 0xC7, 0xCB, 0xCF})
_EXIF_PREFIX = b"Exif\x00\x00"
_ADOBE_PREFIX = b"Adobe"
_FILL_BYTES = re.compile(rb"\xff+")


@dataclass(frozen=True, slots=True)
class _Segment:
    """A marker and the span of its parameters (empty for EOI)."""

    marker: int
    start: int
    end: int
    # For an SOS met walking through the scans: the restart markers in its data.
    restarts: int = 0


@dataclass(frozen=True, slots=True)
class _Frame:
    precision: int
    height: int
    width: int
    component_ids: tuple[int, ...]


def _inspect_jpeg(data: bytes, limits: _Limits) -> ImageHeader:
    frame: _Frame | None = None
    progressive = False
    orientation = 1
    adobe_transform: int | None = None

    for segment in _jpeg_segments(data):
        payload = data[segment.start : segment.end]
        if segment.marker in _SOF_MARKERS:
            frame = _read_frame(payload, frame)
            _check_size(ImageFormat.JPEG, frame.width, frame.height, limits)
            progressive = segment.marker in _PROGRESSIVE_SOF
        elif segment.marker == _APP1 and payload.startswith(_EXIF_PREFIX):
            orientation = _exif_orientation(payload[len(_EXIF_PREFIX) :])
        elif segment.marker == _APP14 and payload.startswith(_ADOBE_PREFIX):
            adobe_transform = payload[11] if len(payload) >= 12 else None
        elif segment.marker == _SOS:
            break
        elif segment.marker == _EOI:
            raise UndecodableImage("the JPEG image has no scan", format="jpeg")

    if frame is None:
        raise UndecodableImage("the JPEG image has no frame header", format="jpeg")

    _check_jpeg_end(data)
    return ImageHeader(
        ImageFormat.JPEG,
        frame.width,
        frame.height,
        components=len(frame.component_ids),
        colour=_jpeg_colour(frame, adobe_transform),
        bit_depth=frame.precision,
        progressive=progressive,
        orientation=orientation,
    )


def _jpeg_segments(data: bytes, *, through_scans: bool = False) -> Iterator[_Segment]:
    """Walk the markers from SOI (T.81, B.1.1.2), to the first SOS or to EOI.

    A marker is followed by a two-byte length that counts itself, except the
    standalone RSTn and TEM, which libjpeg skips between segments and so does
    this walk. With ``through_scans`` the coded data after each SOS is
    stepped over and the walk goes on to EOI.
    """
    position = 2
    coded: _CodedData | None = None
    while True:
        marker, position = _read_marker(data, position)
        if marker == _EOI:
            yield _Segment(marker, position, position)
            return
        if marker == _TEM or _RST0 <= marker <= _RST7:
            continue

        start, position = _read_length(data, marker, position)
        if marker != _SOS or not through_scans:
            yield _Segment(marker, start, position)
            if marker == _SOS:
                return
            continue

        coded = coded or _CodedData(data)
        restarts, after = coded.skip(position)
        yield _Segment(marker, start, position, restarts)
        position = after


def _read_marker(data: bytes, position: int) -> tuple[int, int]:
    if position >= len(data):
        raise TruncatedImage("the JPEG file ends between markers", format="jpeg")
    if data[position] != 0xFF:
        raise UndecodableImage(
            f"the JPEG file has no marker where one must start (offset {position})",
            format="jpeg",
        )

    # Any number of 0xFF fill bytes may precede a marker (T.81, B.1.1.2).
    position = _fill_end(data, position)
    if position >= len(data):
        raise TruncatedImage("the JPEG file ends inside a marker", format="jpeg")

    marker = data[position]
    if marker == _SOI:
        raise UndecodableImage(
            f"the JPEG file has a second SOI marker at offset {position}",
            format="jpeg",
        )
    return marker, position + 1


def _fill_end(data: bytes, position: int) -> int:
    match = _FILL_BYTES.match(data, position)
    return match.end() if match else position


def _read_length(data: bytes, marker: int, position: int) -> tuple[int, int]:
    if position + 2 > len(data):
        raise TruncatedImage("the JPEG file ends inside a segment", format="jpeg")

    (length,) = struct.unpack_from(">H", data, position)
    if length < 2:
        raise UndecodableImage(
            f"the JPEG segment 0xFF{marker:02X} has a length of {length}",
            format="jpeg",
        )

    end = position + length
    if end > len(data):
        raise TruncatedImage("the JPEG file ends inside a segment", format="jpeg")
    return position + 2, end


class _CodedData:
    """Where entropy-coded data ends, and its restart markers (T.81, B.1.1.5).

    Inside coded data every 0xFF byte is followed by a stuffed 0x00, by more
    0xFF fill, or is a marker: RSTn inside the data, any other at its end.
    Those markers are found for the whole file at once with numpy, which
    costs a small part of a decode where a byte-by-byte search would not.
    """

    def __init__(self, data: bytes) -> None:
        samples = np.frombuffer(data, dtype=np.uint8)
        prefixes = np.flatnonzero(samples[:-1] == 0xFF)
        codes = samples[prefixes + 1]
        kept = (codes != 0x00) & (codes != 0xFF)
        self._offsets, self._codes = prefixes[kept], codes[kept]

    def skip(self, position: int) -> tuple[int, int]:
        """Count the restart markers from ``position``; give the ending marker's offset.

        RSTm counts modulo 8 (T.81, Table B.1), from 0 in each scan as libjpeg
        expects; a marker out of turn is refused.
        """
        first = int(np.searchsorted(self._offsets, position))
        codes = self._codes[first:]
        restart = (codes >= _RST0) & (codes <= _RST7)
        if restart.all():
            raise TruncatedImage("the JPEG file ends inside a scan", format="jpeg")

        count = int(np.argmin(restart))
        expected = _RST0 + np.arange(count) % 8
        wrong = np.flatnonzero(codes[:count] != expected)
        if wrong.size:
            found, due = codes[wrong[0]] - _RST0, expected[wrong[0]] - _RST0
            raise UndecodableImage(
                f"a JPEG restart marker is out of turn (RST{found} where RST{due} "
                "belongs)",
                format="jpeg",
            )
        return count, int(self._offsets[first + count])


def _read_frame(payload: bytes, earlier: _Frame | None) -> _Frame:
    """Parse a frame header (T.81, B.2.2): P, Y, X, Nf and Nf component specs."""
    if earlier is not None:
        raise UndecodableImage("the JPEG image has two frame headers", format="jpeg")
    if len(payload) < 6 or len(payload) != 6 + 3 * payload[5] or payload[5] == 0:
        raise UndecodableImage("the JPEG frame header is malformed", format="jpeg")

    precision, height, width, count = struct.unpack_from(">BHHB", payload)
    ids = tuple(payload[6 + 3 * index] for index in range(count))
    return _Frame(precision, height, width, ids)


def _jpeg_colour(frame: _Frame, adobe_transform: int | None) -> ColourModel:
    # The colour transform of Adobe's APP14 segment tells YCbCr from RGB and
    # YCCK from CMYK; without it three components are YCbCr (JFIF) and four
    # are CMYK, the reading libjpeg applies as well.
    count = len(frame.component_ids)
    if count == 1:
        return ColourModel.GRAY
    if count == 4:
        return ColourModel.YCCK if adobe_transform == 2 else ColourModel.CMYK
    if adobe_transform == 0 or frame.component_ids == tuple(b"RGB"):
        return ColourModel.RGB
    return ColourModel.YCBCR


def _check_jpeg_end(data: bytes) -> None:
    # Some cameras pad frames with zero bytes after EOI; nothing else may follow.
    if not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
        raise TruncatedImage(
            "the JPEG file does not end with an EOI marker", format="jpeg"
        )


def check_jpeg_scans(data: bytes, header: ImageHeader) -> None:
    """Raise :class:`UndecodableImage` unless every scan of the JPEG is present.

    Walks every marker to EOI without decoding the coded data: restart
    markers must follow a restart interval and count 0 to 7 in turn, each
    scan must name frame components, and together the scans must code every
    coefficient of every component to full precision (T.81, G.1.1.1). A file
    cut short and closed with an EOI, or a flipped bit that forms a marker,
    fails here.
    """
    if header.format is not ImageFormat.JPEG:
        return
    try:
        missing = _walk_scans(data)
    except (TruncatedImage, UndecodableImage) as exc:
        raise UndecodableImage(
            f"the JPEG file is corrupt past its header: {exc.detail}", format="jpeg"
        ) from exc

    if missing:
        raise UndecodableImage(
            "the JPEG image ends before its scans code every coefficient, "
            "so it would decode only in part",
            format="jpeg",
            missing_coefficients=missing,
        )


def _walk_scans(data: bytes) -> int:
    """Walk the whole file; return how many coefficients no scan completes."""
    component_ids: tuple[int, ...] = ()
    lossless = False
    complete: set[tuple[int, int]] = set()
    interval = 0

    for segment in _jpeg_segments(data, through_scans=True):
        payload = data[segment.start : segment.end]
        if segment.marker in _SOF_MARKERS:
            component_ids = _read_frame(payload, None).component_ids
            lossless = segment.marker in _LOSSLESS_SOF
        elif segment.marker == _DRI:
            interval = _read_interval(payload)
        elif segment.marker == _SOS:
            _check_restarts(segment.restarts, interval)
            complete |= _scan_coverage(payload, component_ids, lossless)

    return 64 * len(component_ids) - len(complete)


def _scan_coverage(
    payload: bytes, component_ids: tuple[int, ...], lossless: bool
) -> set[tuple[int, int]]:
    """The (component, coefficient) pairs a scan codes to full precision (B.2.3).

    A scan codes coefficients Ss to Se of its components; it completes them
    when its successive approximation low bit Al is 0. A lossless scan has
    no coefficients and completes its components outright.
    """
    count = payload[0] if payload else 0
    if not 1 <= count <= 4 or len(payload) != 4 + 2 * count:
        raise UndecodableImage("a JPEG scan header is malformed", format="jpeg")

    selectors = {payload[1 + 2 * index] for index in range(count)}
    if not selectors <= set(component_ids):
        raise UndecodableImage("a JPEG scan names no frame component", format="jpeg")

    first, last, approximation = payload[-3], min(payload[-2], 63), payload[-1]
    if lossless:
        first, last = 0, 63
    elif approximation & 0x0F:
        return set()
    return {(selector, k) for selector in selectors for k in range(first, last + 1)}


def _read_interval(payload: bytes) -> int:
    """The restart interval of a DRI segment (T.81, B.2.4.4): MCUs, 0 for none."""
    if len(payload) != 2:
        raise UndecodableImage("the JPEG restart interval is malformed", format="jpeg")
    (interval,) = struct.unpack(">H", payload)
    return int(interval)


def _check_restarts(restarts: int, interval: int) -> None:
    # Only a restart interval (DRI) puts restart markers in the coded data.
    if restarts and not interval:
        raise UndecodableImage(
            "JPEG restart markers appear with no restart interval", format="jpeg"
        )


# --- PNG (RFC 2083) --------------------------------------------------------------

_PNG_SIGNATURE_SIZE = 8
# PNG's four-byte integers stop at 2^31 - 1 (RFC 2083, 2.1).
_PNG_MAX_INT = 2**31 - 1
# Colour type: (samples per pixel, allowed bit depths); RFC 2083, 4.1.1.
_PNG_COLOUR_TYPES = {
    0: (1, (1, 2, 4, 8, 16), ColourModel.GRAY),
    2: (3, (8, 16), ColourModel.RGB),
    3: (1, (1, 2, 4, 8), ColourModel.PALETTE),
    4: (2, (8, 16), ColourModel.GRAY_ALPHA),
    6: (4, (8, 16), ColourModel.RGBA),
}


def _inspect_png(data: bytes, limits: _Limits) -> ImageHeader:
    if len(data) < _PNG_SIGNATURE_SIZE + 25:
        raise TruncatedImage("the PNG file ends inside its header", format="png")

    # The IHDR chunk must come first (RFC 2083, 4.1.1).
    length, kind = struct.unpack_from(">I4s", data, 8)
    if kind != b"IHDR" or length != 13:
        raise UndecodableImage("the PNG file does not start with IHDR", format="png")

    width, height, depth, colour_type = struct.unpack_from(">IIBB", data, 16)
    if width > _PNG_MAX_INT or height > _PNG_MAX_INT:
        raise UndecodableImage("the PNG header gives an invalid size", format="png")
    _check_size(ImageFormat.PNG, width, height, limits)

    components, depths, colour = _PNG_COLOUR_TYPES.get(colour_type, (0, (), None))
    if colour is None or depth not in depths:
        raise UndecodableImage(
            f"the PNG header gives colour type {colour_type} at {depth} bits",
            format="png",
        )

    transparency, orientation = _walk_png_chunks(data)
    return ImageHeader(
        ImageFormat.PNG,
        width,
        height,
        components=components,
        colour=colour,
        bit_depth=depth,
        has_alpha=colour_type in (4, 6) or transparency,
        orientation=orientation,
    )


def _walk_png_chunks(data: bytes) -> tuple[bool, int]:
    """Step chunk by chunk (RFC 2083, 3.2) to IEND; note tRNS and eXIf.

    Returns whether a tRNS chunk adds transparency, and the EXIF orientation
    of an eXIf chunk (PNG Third Edition), if any.
    """
    transparency, orientation, image_data = False, 1, False
    position = _PNG_SIGNATURE_SIZE
    while position + 12 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, position)
        if length > _PNG_MAX_INT or not kind.isalpha():
            raise UndecodableImage(
                f"the PNG file has a malformed chunk at offset {position}",
                format="png",
            )

        body = position + 8
        position = body + length + 4
        if position > len(data):
            break
        if kind == b"IEND":
            if not image_data:
                raise UndecodableImage("the PNG file has no IDAT chunk", format="png")
            return transparency, orientation

        image_data = image_data or kind == b"IDAT"
        transparency = transparency or kind == b"tRNS"
        if kind == b"eXIf":
            orientation = _exif_orientation(data[body : body + length])

    raise TruncatedImage("the PNG file ends before its IEND chunk", format="png")


# --- WebP (the WebP container specification; RFC 9649) ---------------------------

_RIFF_HEADER = 12
_CHUNK_HEADER = 8
_VP8_START_CODE = b"\x9d\x01\x2a"
_VP8L_SIGNATURE = 0x2F
_VP8X_ALPHA = 0x10


def _inspect_webp(data: bytes, limits: _Limits) -> ImageHeader:
    # The RIFF size counts everything after itself (the "WEBP" FourCC onward).
    (riff_size,) = struct.unpack_from("<I", data, 4)
    end = 8 + riff_size
    if end > len(data):
        raise TruncatedImage(
            "the WebP file is shorter than its RIFF header says", format="webp"
        )

    chunks = dict(_webp_chunks(data, end))
    first = next(iter(chunks), None)
    if first == b"VP8 ":
        width, height, alpha = _vp8_size(data, chunks[first])
    elif first == b"VP8L":
        width, height, alpha = _vp8l_size(data, chunks[first])
    elif first == b"VP8X":
        width, height, alpha = _vp8x_size(data, chunks[first])
        _check_frame_chunk(data, chunks, limits)
    else:
        raise UndecodableImage("the WebP file has no image chunk first", format="webp")

    _check_size(ImageFormat.WEBP, width, height, limits)
    exif = chunks.get(b"EXIF")
    return ImageHeader(
        ImageFormat.WEBP,
        width,
        height,
        components=4 if alpha else 3,
        colour=ColourModel.RGBA if alpha else ColourModel.RGB,
        has_alpha=alpha,
        orientation=_webp_orientation(data, exif) if exif else 1,
    )


def _check_frame_chunk(
    data: bytes, chunks: dict[bytes, tuple[int, int]], limits: _Limits
) -> None:
    # The canvas is what VP8X announces; the frame inside must obey the
    # limits too, whatever the decoder makes of a mismatch.
    if b"VP8 " in chunks:
        width, height, _ = _vp8_size(data, chunks[b"VP8 "])
    elif b"VP8L" in chunks:
        width, height, _ = _vp8l_size(data, chunks[b"VP8L"])
    else:
        return
    _check_size(ImageFormat.WEBP, width, height, limits)


def _webp_chunks(data: bytes, end: int) -> Iterator[tuple[bytes, tuple[int, int]]]:
    """Yield each chunk's FourCC and payload span; payloads pad to even sizes."""
    position = _RIFF_HEADER
    while position + _CHUNK_HEADER <= end:
        kind, size = struct.unpack_from("<4sI", data, position)
        start = position + _CHUNK_HEADER
        if start + size > end:
            raise UndecodableImage(
                f"the WebP chunk {kind!r} runs past the end of the file",
                format="webp",
            )
        yield kind, (start, start + size)
        position = start + size + (size & 1)


def _vp8_size(data: bytes, span: tuple[int, int]) -> tuple[int, int, bool]:
    # A key frame (RFC 6386, 9.1): a 3-byte frame tag whose low bit is 0, the
    # start code, then 14-bit width and height, each with 2 bits of scaling.
    start, end = span
    if (
        end - start < 10
        or data[start] & 1
        or data[start + 3 : start + 6] != _VP8_START_CODE
    ):
        raise UndecodableImage("the WebP VP8 frame header is malformed", format="webp")

    width, height = struct.unpack_from("<HH", data, start + 6)
    return width & 0x3FFF, height & 0x3FFF, False


def _vp8l_size(data: bytes, span: tuple[int, int]) -> tuple[int, int, bool]:
    # The lossless header: signature 0x2F, then 14 bits of width - 1, 14 of
    # height - 1, the alpha_is_used bit and a 3-bit version that must be 0.
    start, end = span
    if end - start < 5 or data[start] != _VP8L_SIGNATURE:
        raise UndecodableImage("the WebP VP8L header is malformed", format="webp")

    (bits,) = struct.unpack_from("<I", data, start + 1)
    if bits >> 29:
        raise UndecodableImage("the WebP VP8L version is unknown", format="webp")
    return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, bool(bits >> 28 & 1)


def _vp8x_size(data: bytes, span: tuple[int, int]) -> tuple[int, int, bool]:
    # The extended header: flags, 3 reserved bytes, then the canvas width - 1
    # and height - 1 as 24-bit little-endian numbers.
    start, end = span
    if end - start < 10:
        raise UndecodableImage("the WebP VP8X header is malformed", format="webp")

    width = int.from_bytes(data[start + 4 : start + 7], "little") + 1
    height = int.from_bytes(data[start + 7 : start + 10], "little") + 1
    return width, height, bool(data[start] & _VP8X_ALPHA)


def _webp_orientation(data: bytes, span: tuple[int, int]) -> int:
    # The EXIF chunk holds the TIFF structure; some writers keep JPEG's
    # "Exif\0\0" prefix in front of it.
    payload = data[span[0] : span[1]]
    return _exif_orientation(payload.removeprefix(_EXIF_PREFIX))
