"""Test corpus for imaging: frames drawn with numpy, encoded by OpenCV or by hand.

Nothing binary is committed: every input is built here. OpenCV writes the
ordinary JPEG, PNG and WebP files; the containers it cannot write (CMYK and
YCCK JPEG, grey+alpha and palette PNG, WebP with EXIF, headers claiming huge
sizes) are assembled byte by byte following their specifications.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

Pixels = NDArray[np.uint8]

SOI, EOI = b"\xff\xd8", b"\xff\xd9"
BRIGHT_CORNER = 96


# --- Frames ----------------------------------------------------------------------


def face_frame(width: int = 640, height: int = 480, seed: int = 0) -> Pixels:
    """A face-like drawing on a shaded wall, with sensor-like noise."""
    columns = np.linspace(70, 130, width, dtype=np.float32)
    frame = np.repeat(np.tile(columns, (height, 1))[..., np.newaxis], 3, axis=2)

    centre, axes = (width // 2, height // 2), (width // 6, height // 3)
    cv2.ellipse(frame, centre, axes, 0, 0, 360, (120, 150, 200), -1)
    for side in (-1, 1):
        eye = (centre[0] + side * axes[0] // 2, centre[1] - axes[1] // 4)
        cv2.circle(frame, eye, max(2, axes[0] // 8), (40, 40, 40), -1)
    mouth = (centre[0], centre[1] + axes[1] // 2)
    lips = (axes[0] // 2, axes[1] // 8)
    cv2.ellipse(frame, mouth, lips, 0, 0, 180, (60, 60, 140), max(1, width // 160))

    noise = np.random.default_rng(seed).normal(0, 6, frame.shape)
    return np.clip(frame + noise, 0, 255).astype(np.uint8)


def upright_marked_frame() -> Pixels:
    """A 640x480 face frame whose top-left corner alone is bright."""
    frame = face_frame()
    frame[:BRIGHT_CORNER, :BRIGHT_CORNER] = 250
    return frame


def flat_frame(value: int, width: int = 640, height: int = 480) -> Pixels:
    return np.full((height, width, 3), value, dtype=np.uint8)


def blurred_frame() -> Pixels:
    return np.asarray(cv2.GaussianBlur(face_frame(), (0, 0), 8), dtype=np.uint8)


def with_grey_corner(frame: Pixels, size: int = 32) -> Pixels:
    """``frame`` with its bottom-right corner painted exactly mid-grey."""
    painted = frame.copy()
    painted[-size:, -size:] = 128
    return painted


# --- OpenCV encodings ------------------------------------------------------------


def _encode(suffix: str, pixels: NDArray[Any], params: list[int]) -> bytes:
    ok, encoded = cv2.imencode(suffix, pixels, params)
    assert ok, f"OpenCV did not encode {suffix}"
    return bytes(encoded)


def jpeg(
    pixels: Pixels, *, quality: int = 90, progressive: bool = False, restarts: int = 0
) -> bytes:
    params = [cv2.IMWRITE_JPEG_QUALITY, quality]
    if progressive:
        params += [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]
    if restarts:
        params += [cv2.IMWRITE_JPEG_RST_INTERVAL, restarts]
    return _encode(".jpg", pixels, params)


def face_jpeg(width: int = 640, height: int = 480, **options: Any) -> bytes:
    return jpeg(face_frame(width, height), **options)


def png(pixels: NDArray[np.uint8] | NDArray[np.uint16]) -> bytes:
    return _encode(".png", pixels, [])


def webp(pixels: Pixels, *, quality: int = 90) -> bytes:
    """Lossy WebP (VP8), or lossless (VP8L) at quality above 100."""
    return _encode(".webp", pixels, [cv2.IMWRITE_WEBP_QUALITY, quality])


def face_png(width: int = 640, height: int = 480) -> bytes:
    return png(face_frame(width, height))


def face_webp(quality: int = 90) -> bytes:
    return webp(face_frame(), quality=quality)


def gray(pixels: Pixels) -> Pixels:
    return np.asarray(cv2.cvtColor(pixels, cv2.COLOR_BGR2GRAY), dtype=np.uint8)


def with_alpha(pixels: Pixels) -> Pixels:
    """BGRA: the left half fully transparent (and black beneath), the rest opaque."""
    colour = pixels.copy()
    colour[:, : pixels.shape[1] // 2] = 0
    alpha = np.full(pixels.shape[:2], 255, dtype=np.uint8)
    alpha[:, : pixels.shape[1] // 2] = 0
    return np.dstack([colour, alpha])


def sixteen_bit(pixels: Pixels) -> NDArray[np.uint16]:
    return pixels.astype(np.uint16) * 257


# --- JPEG surgery (ITU T.81, Annex B) --------------------------------------------


def segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def find_segment(data: bytes, marker: int) -> int:
    """Offset of the first ``marker`` segment before the scan data."""
    position = 2
    while data[position + 1] != marker:
        if data[position + 1] == 0xDA:
            raise LookupError(f"no 0xFF{marker:02X} segment before the scan")
        (length,) = struct.unpack_from(">H", data, position + 2)
        position += 2 + length
    return position


def scan_data(data: bytes) -> tuple[int, int]:
    """The span of the last scan's coded data: after its SOS, up to EOI."""
    end = data.rindex(EOI)
    sos = data.rindex(b"\xff\xda", 0, end)
    (length,) = struct.unpack_from(">H", data, sos + 2)
    return sos + 2 + length, end


def exif_segment(orientation: int, *, big_endian: bool = False) -> bytes:
    """An APP1 Exif segment whose IFD0 holds one entry, Orientation (0x0112)."""
    order = ">" if big_endian else "<"
    tiff = (b"MM\x00*" if big_endian else b"II*\x00") + struct.pack(order + "I", 8)
    entry = struct.pack(order + "HHI", 0x0112, 3, 1) + struct.pack(
        order + "HH", orientation, 0
    )
    ifd = struct.pack(order + "H", 1) + entry + struct.pack(order + "I", 0)
    return segment(0xE1, b"Exif\x00\x00" + tiff + ifd)


def with_exif_orientation(data: bytes, orientation: int) -> bytes:
    # EXIF 2.3 (4.5.4) puts APP1 right after SOI.
    return SOI + exif_segment(orientation, big_endian=orientation % 2 == 0) + data[2:]


# Each orientation's inverse: what a camera stores so that applying the
# orientation (EXIF 2.3, 4.6.4 A) shows the scene upright.
_STORED: dict[int, Callable[[Pixels], Pixels]] = {
    1: lambda p: p,
    2: lambda p: p[:, ::-1],
    3: lambda p: p[::-1, ::-1],
    4: lambda p: p[::-1],
    5: lambda p: p.transpose(1, 0, 2),
    6: lambda p: np.rot90(p, 1),
    7: lambda p: p.transpose(1, 0, 2)[::-1, ::-1],
    8: lambda p: np.rot90(p, -1),
}


def stored_for(upright: Pixels, orientation: int) -> Pixels:
    return np.ascontiguousarray(_STORED[orientation](upright))


def oriented_jpeg(orientation: int) -> bytes:
    stored = stored_for(upright_marked_frame(), orientation)
    return with_exif_orientation(jpeg(stored), orientation)


def claiming_size(data: bytes, width: int, height: int) -> bytes:
    """``data`` with its frame header (SOF) patched to claim another size."""
    sof = find_segment(data, 0xC0)
    patched = bytearray(data)
    struct.pack_into(">HH", patched, sof + 5, height, width)
    return bytes(patched)


def without_segment(data: bytes, marker: int) -> bytes:
    start = find_segment(data, marker)
    (length,) = struct.unpack_from(">H", data, start + 2)
    return data[:start] + data[start + 2 + length :]


def with_bad_length(data: bytes, marker: int = 0xDB) -> bytes:
    """``data`` with one segment's length set to 1, less than the field itself."""
    patched = bytearray(data)
    struct.pack_into(">H", patched, find_segment(data, marker) + 2, 1)
    return bytes(patched)


def with_garbage_before(data: bytes, marker: int = 0xC4) -> bytes:
    start = find_segment(data, marker)
    return data[:start] + b"\x12\x34" + data[start:]


def truncated(data: bytes, fraction: float, *, closed: bool = False) -> bytes:
    """The first ``fraction`` of ``data``, with an EOI marker appended if ``closed``."""
    cut = data[: int(len(data) * fraction)]
    return cut + EOI if closed else cut


def flipped_into_marker(data: bytes) -> bytes:
    """Flip the first bit in the scan data that turns a byte into a marker.

    The byte must be one bit short of 0xFF and followed by a byte that makes
    "0xFF, next" a marker: neither a stuffed 0x00, a restart nor fill.
    """
    start, end = scan_data(data)
    for position in range(start, end - 1):
        byte, following = data[position], data[position + 1]
        one_bit_short = bin(byte).count("1") == 7
        if one_bit_short and following not in (0x00, 0xFF, *range(0xD0, 0xD8)):
            return flip_bit(data, position, (0xFF ^ byte).bit_length() - 1)
    raise LookupError("no byte in the scan data is one bit short of a marker")


def flipped_stuffed_byte(data: bytes) -> bytes:
    """Flip bit 6 of the first stuffed 0x00 in the scan: 0xFF00 becomes 0xFF40."""
    start, end = scan_data(data)
    return flip_bit(data, data.index(b"\xff\x00", start, end) + 1, 6)


def flip_bit(data: bytes, position: int, bit: int) -> bytes:
    flipped = bytearray(data)
    flipped[position] ^= 1 << bit
    return bytes(flipped)


def flipped_in_scan(data: bytes, fraction: float, bit: int) -> bytes:
    start, end = scan_data(data)
    return flip_bit(data, start + int((end - start) * fraction), bit)


def with_restarts_swapped(data: bytes) -> bytes:
    """``data`` with its first two restart markers exchanged (RST1 before RST0)."""
    first = data.index(b"\xff\xd0")
    second = data.index(b"\xff\xd1")
    swapped = bytearray(data)
    swapped[first + 1], swapped[second + 1] = 0xD1, 0xD0
    return bytes(swapped)


# --- A DC-only baseline JPEG encoder, for CMYK and YCCK (T.81, F.1.2) -----------------


class _BitWriter:
    """Huffman-coded bits, MSB first, with 0xFF bytes stuffed (T.81, F.1.2.3)."""

    def __init__(self) -> None:
        self.out = bytearray()
        self._value = 0
        self._count = 0

    def put(self, value: int, length: int) -> None:
        for shift in range(length - 1, -1, -1):
            self._value = self._value << 1 | (value >> shift) & 1
            self._count += 1
            if self._count == 8:
                self.out.append(self._value)
                if self._value == 0xFF:
                    self.out.append(0)
                self._value, self._count = 0, 0

    def finish(self) -> bytes:
        while self._count:
            self.put(1, 1)
        return bytes(self.out)


def block_jpeg(planes: Pixels, *, adobe_transform: int | None) -> bytes:
    """Encode ``planes`` (components, rows, columns) as flat 8x8 blocks.

    Each sample becomes one block of that level: only DC coefficients are
    coded, with a DC quantizer of 8 so a quantized DC is the level minus 128.
    The DC table gives each of the 12 magnitude categories a 4-bit code; the
    AC table holds only end-of-block, coded as a single 0 bit.
    """
    components, rows, columns = planes.shape
    header = SOI
    if adobe_transform is not None:
        header += segment(
            0xEE, b"Adobe" + struct.pack(">HHHB", 100, 0, 0, adobe_transform)
        )
    header += segment(0xDB, bytes([0, 8]) + bytes([1] * 63))
    frame = struct.pack(">BHHB", 8, rows * 8, columns * 8, components)
    header += segment(
        0xC0, frame + b"".join(bytes([c + 1, 0x11, 0]) for c in range(components))
    )
    dc_table = bytes([0x00, 0, 0, 0, 12] + [0] * 12) + bytes(range(12))
    ac_table = bytes([0x10, 1] + [0] * 15) + bytes([0x00])
    header += segment(0xC4, dc_table + ac_table)
    selectors = b"".join(bytes([c + 1, 0x00]) for c in range(components))
    header += segment(0xDA, bytes([components]) + selectors + bytes([0, 63, 0]))
    return header + _dc_scan(planes) + EOI


def _dc_scan(planes: Pixels) -> bytes:
    components, rows, columns = planes.shape
    bits, previous = _BitWriter(), [0] * components
    for row in range(rows):
        for column in range(columns):
            for component in range(components):
                level = int(planes[component, row, column]) - 128
                difference, previous[component] = level - previous[component], level
                size = abs(difference).bit_length()
                bits.put(size, 4)
                bits.put(
                    difference if difference >= 0 else difference + (1 << size) - 1,
                    size,
                )
                bits.put(0, 1)
    return bits.finish()


def cmyk_planes(rows: int = 12, columns: int = 16, seed: int = 5) -> Pixels:
    """Adobe-style inverted CMYK levels (255: no ink) in random blocks.

    The top-left block is pure cyan ink and the one right of it pure black.
    """
    rng = np.random.default_rng(seed)
    planes = rng.integers(60, 256, (4, rows, columns), dtype=np.uint8)
    planes[3] = 255
    planes[:, 0, 0] = (0, 255, 255, 255)
    planes[:, 0, 1] = (255, 255, 255, 0)
    return planes


def ycck_from_cmyk(planes: Pixels) -> Pixels:
    """The YCCK planes libjpeg turns back into ``planes`` (Adobe transform 2).

    libjpeg reads YCC as JFIF YCbCr, takes RGB from it and sets each of C, M,
    Y to 255 minus R, G, B; K passes through.
    """
    red, green, blue = (255.0 - planes[index].astype(np.float64) for index in range(3))
    luma = 0.299 * red + 0.587 * green + 0.114 * blue
    blue_difference = -0.168736 * red - 0.331264 * green + 0.5 * blue + 128
    red_difference = 0.5 * red - 0.418688 * green - 0.081312 * blue + 128
    ycc = np.stack([luma, blue_difference, red_difference, planes[3]])
    return np.asarray(np.clip(np.rint(ycc), 0, 255), dtype=np.uint8)


def cmyk_jpeg() -> bytes:
    return block_jpeg(cmyk_planes(), adobe_transform=0)


def ycck_jpeg() -> bytes:
    return block_jpeg(ycck_from_cmyk(cmyk_planes()), adobe_transform=2)


# --- PNG by hand (RFC 2083) ------------------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload)
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def ihdr(width: int, height: int, depth: int, colour_type: int) -> bytes:
    return chunk(
        b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0)
    )


def raw_png(rows: Pixels, colour_type: int, *, extra: bytes = b"") -> bytes:
    """An 8-bit PNG of ``rows`` (height, width, samples), filter type 0 on every row."""
    height, width = rows.shape[:2]
    scanlines = b"".join(b"\x00" + rows[row].tobytes() for row in range(height))
    return (
        PNG_SIGNATURE
        + ihdr(width, height, 8, colour_type)
        + extra
        + chunk(b"IDAT", zlib.compress(scanlines))
        + chunk(b"IEND", b"")
    )


def gray_alpha_png() -> bytes:
    """Grey plus alpha (colour type 4): the left half transparent."""
    rgba = with_alpha(face_frame(320, 240))
    return raw_png(np.dstack([gray(rgba[..., :3]), rgba[..., 3]]), 4)


def palette_png() -> bytes:
    """A palette image (colour type 3) whose entry 0 is transparent (tRNS)."""
    levels = gray(face_frame(320, 240)) // 16
    palette = bytes(
        value for level in range(16) for value in (level * 16, 128, 255 - level * 16)
    )
    extra = chunk(b"PLTE", palette) + chunk(b"tRNS", b"\x00")
    return raw_png(levels[..., np.newaxis], 3, extra=extra)


def png_claiming(width: int, height: int) -> bytes:
    """A valid IHDR for ``width`` x ``height`` with a tiny IDAT: a PNG "bomb"."""
    tiny = chunk(b"IDAT", zlib.compress(b"\x00" * 64))
    return PNG_SIGNATURE + ihdr(width, height, 8, 2) + tiny + chunk(b"IEND", b"")


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, position = [], 8
    while position < len(data):
        (length,) = struct.unpack_from(">I", data, position)
        kind = data[position + 4 : position + 8]
        chunks.append((kind, data[position + 8 : position + 8 + length]))
        position += 12 + length
    return chunks


def png_from_chunks(chunks: list[tuple[bytes, bytes]]) -> bytes:
    return PNG_SIGNATURE + b"".join(chunk(kind, payload) for kind, payload in chunks)


def png_with_exif(data: bytes, orientation: int) -> bytes:
    chunks = png_chunks(data)
    exif = exif_segment(orientation)[10:]  # the TIFF structure after "Exif\0\0"
    return png_from_chunks([chunks[0], (b"eXIf", exif), *chunks[1:]])


def png_without_ihdr_first(data: bytes) -> bytes:
    chunks = png_chunks(data)
    return png_from_chunks([(b"tEXt", b"Comment\x00first"), *chunks])


def png_with_bad_chunk_length(data: bytes) -> bytes:
    patched = bytearray(data)
    struct.pack_into(">I", patched, 33, 0xFFFFFFF0)  # the chunk after IHDR
    return bytes(patched)


def png_short_of_data(data: bytes) -> bytes:
    """Half of the compressed image data, in a well-formed file ending with IEND."""
    chunks = png_chunks(data)
    image_data = b"".join(payload for kind, payload in chunks if kind == b"IDAT")
    return png_from_chunks(
        [chunks[0], (b"IDAT", image_data[: len(image_data) // 2]), (b"IEND", b"")]
    )


# --- WebP by hand (the WebP container specification) -----------------------------


def webp_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, position = [], 12
    while position < len(data):
        kind, size = struct.unpack_from("<4sI", data, position)
        chunks.append((kind, data[position + 8 : position + 8 + size]))
        position += 8 + size + (size & 1)
    return chunks


def riff(chunks: list[tuple[bytes, bytes]]) -> bytes:
    body = b"".join(
        kind + struct.pack("<I", len(payload)) + payload + b"\x00" * (len(payload) & 1)
        for kind, payload in chunks
    )
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body


def webp_with_exif(data: bytes, orientation: int, width: int, height: int) -> bytes:
    """A simple lossy WebP rewrapped as extended (VP8X) with an EXIF chunk."""
    flags = 0x08  # EXIF metadata present
    canvas = (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    vp8x = bytes([flags, 0, 0, 0]) + canvas
    exif = exif_segment(orientation)[10:]
    return riff([(b"VP8X", vp8x), *webp_chunks(data), (b"EXIF", exif)])


def webp_with_unknown_first_chunk(data: bytes) -> bytes:
    return riff([(b"JUNK", b"\x00" * 6), *webp_chunks(data)])


def gif() -> bytes:
    """The smallest GIF: one transparent pixel."""
    return (
        b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01"
        b"\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
    )


def random_bytes(size: int = 4096, seed: int = 9) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()
