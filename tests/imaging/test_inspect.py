"""Imaging inspection: what headers say, read without decoding, and early refusals."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import pytest

from edge_agent.errors import (
    ImageTooLarge,
    InvalidInput,
    TruncatedImage,
    UndecodableImage,
    UnsupportedImage,
)
from edge_agent.imaging import inspect as inspect_module
from edge_agent.imaging.formats import ImageFormat
from edge_agent.imaging.inspect import (
    ColourModel,
    ImageHeader,
    check_jpeg_scans,
    inspect_image,
)
from tests.imaging import corpus

JPEG, PNG, WEBP = ImageFormat.JPEG, ImageFormat.PNG, ImageFormat.WEBP
LIMITS = {"max_pixels": 40_000_000, "max_side": 16_384}
Make = Callable[[], bytes]


HEADERS = [
    pytest.param(
        corpus.face_jpeg,
        ImageHeader(JPEG, 640, 480, 3, ColourModel.YCBCR),
        id="jpeg-baseline",
    ),
    pytest.param(
        lambda: corpus.face_jpeg(progressive=True),
        ImageHeader(JPEG, 640, 480, 3, ColourModel.YCBCR, progressive=True),
        id="jpeg-progressive",
    ),
    pytest.param(
        lambda: corpus.face_jpeg(1920, 1080, restarts=4),
        ImageHeader(JPEG, 1920, 1080, 3, ColourModel.YCBCR),
        id="jpeg-1920x1080-restart-markers",
    ),
    pytest.param(
        lambda: corpus.jpeg(corpus.gray(corpus.face_frame())),
        ImageHeader(JPEG, 640, 480, 1, ColourModel.GRAY),
        id="jpeg-gray",
    ),
    pytest.param(
        corpus.cmyk_jpeg,
        ImageHeader(JPEG, 128, 96, 4, ColourModel.CMYK),
        id="jpeg-cmyk-adobe",
    ),
    pytest.param(
        corpus.ycck_jpeg,
        ImageHeader(JPEG, 128, 96, 4, ColourModel.YCCK),
        id="jpeg-ycck-adobe",
    ),
    pytest.param(
        lambda: corpus.with_exif_orientation(corpus.face_jpeg(), 6),
        ImageHeader(JPEG, 640, 480, 3, ColourModel.YCBCR, orientation=6),
        id="jpeg-exif-6-big-endian",
    ),
    pytest.param(
        lambda: corpus.with_exif_orientation(corpus.face_jpeg(), 3),
        ImageHeader(JPEG, 640, 480, 3, ColourModel.YCBCR, orientation=3),
        id="jpeg-exif-3-little-endian",
    ),
    pytest.param(
        lambda: corpus.with_exif_orientation(corpus.face_jpeg(), 9),
        ImageHeader(JPEG, 640, 480, 3, ColourModel.YCBCR),
        id="jpeg-exif-orientation-out-of-range",
    ),
    pytest.param(
        lambda: (
            corpus.SOI
            + corpus.segment(0xE1, b"Exif\x00\x00II*")
            + corpus.face_jpeg()[2:]
        ),
        ImageHeader(JPEG, 640, 480, 3, ColourModel.YCBCR),
        id="jpeg-exif-cut-short",
    ),
    pytest.param(
        lambda: corpus.face_jpeg() + b"\x00" * 64,
        ImageHeader(JPEG, 640, 480, 3, ColourModel.YCBCR),
        id="jpeg-zero-padded",
    ),
    pytest.param(
        corpus.face_png,
        ImageHeader(PNG, 640, 480, 3, ColourModel.RGB),
        id="png-rgb",
    ),
    pytest.param(
        lambda: corpus.png(corpus.gray(corpus.face_frame())),
        ImageHeader(PNG, 640, 480, 1, ColourModel.GRAY),
        id="png-gray",
    ),
    pytest.param(
        lambda: corpus.png(corpus.with_alpha(corpus.face_frame())),
        ImageHeader(PNG, 640, 480, 4, ColourModel.RGBA, has_alpha=True),
        id="png-bgra",
    ),
    pytest.param(
        lambda: corpus.png(corpus.sixteen_bit(corpus.face_frame())),
        ImageHeader(PNG, 640, 480, 3, ColourModel.RGB, bit_depth=16),
        id="png-16-bit",
    ),
    pytest.param(
        corpus.gray_alpha_png,
        ImageHeader(PNG, 320, 240, 2, ColourModel.GRAY_ALPHA, has_alpha=True),
        id="png-gray-alpha",
    ),
    pytest.param(
        corpus.palette_png,
        ImageHeader(PNG, 320, 240, 1, ColourModel.PALETTE, has_alpha=True),
        id="png-palette-trns",
    ),
    pytest.param(
        lambda: corpus.png_with_exif(corpus.face_png(), 8),
        ImageHeader(PNG, 640, 480, 3, ColourModel.RGB, orientation=8),
        id="png-exif-8",
    ),
    pytest.param(
        corpus.face_webp,
        ImageHeader(WEBP, 640, 480, 3, ColourModel.RGB),
        id="webp-lossy-vp8",
    ),
    pytest.param(
        lambda: corpus.webp(corpus.face_frame(), quality=101),
        ImageHeader(WEBP, 640, 480, 3, ColourModel.RGB),
        id="webp-lossless-vp8l",
    ),
    pytest.param(
        lambda: corpus.webp(corpus.with_alpha(corpus.face_frame())),
        ImageHeader(WEBP, 640, 480, 4, ColourModel.RGBA, has_alpha=True),
        id="webp-alpha-vp8x",
    ),
    pytest.param(
        lambda: corpus.webp(corpus.with_alpha(corpus.face_frame()), quality=101),
        ImageHeader(WEBP, 640, 480, 4, ColourModel.RGBA, has_alpha=True),
        id="webp-lossless-alpha-vp8l",
    ),
    pytest.param(
        lambda: corpus.webp_with_exif(corpus.face_webp(), 5, 640, 480),
        ImageHeader(WEBP, 640, 480, 3, ColourModel.RGB, orientation=5),
        id="webp-vp8x-exif-5",
    ),
]


@pytest.mark.parametrize(("make", "expected"), HEADERS)
def test_header(make: Make, expected: ImageHeader) -> None:
    assert inspect_image(make(), **LIMITS) == expected


REFUSALS = [
    pytest.param(lambda: b"", UnsupportedImage, id="zero-bytes"),
    pytest.param(corpus.random_bytes, UnsupportedImage, id="random-bytes"),
    pytest.param(corpus.gif, UnsupportedImage, id="gif89a"),
    pytest.param(
        lambda: corpus.claiming_size(corpus.face_jpeg(), 60000, 60000),
        ImageTooLarge,
        id="jpeg-claims-60000x60000",
    ),
    pytest.param(
        lambda: corpus.claiming_size(corpus.face_jpeg(), 20000, 100),
        ImageTooLarge,
        id="jpeg-side-over-max-side",
    ),
    pytest.param(
        lambda: corpus.claiming_size(corpus.face_jpeg(), 8000, 6000),
        ImageTooLarge,
        id="jpeg-pixels-over-max-pixels",
    ),
    pytest.param(
        lambda: corpus.png_claiming(60000, 60000),
        ImageTooLarge,
        id="png-bomb-60000x60000",
    ),
    pytest.param(
        lambda: corpus.png_claiming(10000, 10000),
        ImageTooLarge,
        id="png-claims-10000x10000",
    ),
    pytest.param(
        lambda: corpus.claiming_size(corpus.face_jpeg(), 640, 0),
        UndecodableImage,
        id="jpeg-zero-height",
    ),
    pytest.param(
        lambda: corpus.without_segment(corpus.face_jpeg(), 0xC0),
        UndecodableImage,
        id="jpeg-no-sof-before-sos",
    ),
    pytest.param(
        lambda: corpus.SOI + corpus.EOI,
        UndecodableImage,
        id="jpeg-no-scan",
    ),
    pytest.param(
        lambda: corpus.with_bad_length(corpus.face_jpeg()),
        UndecodableImage,
        id="jpeg-segment-length-1",
    ),
    pytest.param(
        lambda: corpus.with_garbage_before(corpus.face_jpeg()),
        UndecodableImage,
        id="jpeg-bytes-between-segments",
    ),
    pytest.param(
        lambda: corpus.png_without_ihdr_first(corpus.face_png()),
        UndecodableImage,
        id="png-ihdr-not-first",
    ),
    pytest.param(
        lambda: corpus.png_with_bad_chunk_length(corpus.face_png()),
        UndecodableImage,
        id="png-chunk-length-over-2-31",
    ),
    pytest.param(
        lambda: corpus.webp_with_unknown_first_chunk(corpus.face_webp()),
        UndecodableImage,
        id="webp-no-image-chunk-first",
    ),
    pytest.param(
        lambda: corpus.face_jpeg()[:100],
        TruncatedImage,
        id="jpeg-cut-in-header",
    ),
    pytest.param(
        lambda: corpus.truncated(corpus.face_jpeg(), 0.1),
        TruncatedImage,
        id="jpeg-cut-10-percent",
    ),
    pytest.param(
        lambda: corpus.truncated(corpus.face_jpeg(), 0.5),
        TruncatedImage,
        id="jpeg-cut-50-percent",
    ),
    pytest.param(
        lambda: corpus.truncated(corpus.face_jpeg(), 0.9),
        TruncatedImage,
        id="jpeg-cut-90-percent",
    ),
    pytest.param(
        lambda: corpus.face_jpeg()[:-2],
        TruncatedImage,
        id="jpeg-missing-eoi-only",
    ),
    pytest.param(
        lambda: corpus.truncated(corpus.face_png(), 0.5),
        TruncatedImage,
        id="png-cut-no-iend",
    ),
    pytest.param(
        lambda: corpus.truncated(corpus.face_webp(), 0.5),
        TruncatedImage,
        id="webp-riff-size-past-end",
    ),
]


@pytest.mark.parametrize(("make", "error"), REFUSALS)
def test_refusal(make: Make, error: type[InvalidInput]) -> None:
    with pytest.raises(InvalidInput) as refused:
        inspect_image(make(), **LIMITS)

    assert type(refused.value) is error


@pytest.mark.parametrize(
    ("make", "size"),
    [
        pytest.param(
            lambda: corpus.claiming_size(corpus.face_jpeg(), 60000, 60000),
            (60000, 60000),
            id="jpeg",
        ),
        pytest.param(lambda: corpus.png_claiming(60000, 40), (60000, 40), id="png"),
    ],
)
def test_too_large_names_the_claimed_size(make: Make, size: tuple[int, int]) -> None:
    with pytest.raises(ImageTooLarge) as refused:
        inspect_image(make(), **LIMITS)

    width, height = size
    assert refused.value.extensions["width"] == width
    assert refused.value.extensions["height"] == height


def test_inspection_never_decodes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inspection has no OpenCV in it: the 60000x60000 claims fail on the header."""

    def no_decoding(*args: object) -> None:
        raise AssertionError("inspection decoded pixels")

    monkeypatch.setattr(cv2, "imdecode", no_decoding)
    bombs = [
        corpus.claiming_size(corpus.face_jpeg(), 60000, 60000),
        corpus.png_claiming(60000, 60000),
    ]

    for bomb in bombs:
        with pytest.raises(ImageTooLarge):
            inspect_image(bomb, **LIMITS)
    assert not hasattr(inspect_module, "cv2")


def test_upright_size_swaps_for_quarter_turns() -> None:
    header = inspect_image(corpus.oriented_jpeg(6), **LIMITS)

    assert (header.width, header.height) == (480, 640)
    assert header.upright_size == (640, 480)


COMPLETE_SCANS = [
    pytest.param(corpus.face_jpeg, id="baseline"),
    pytest.param(lambda: corpus.face_jpeg(progressive=True), id="progressive"),
    pytest.param(lambda: corpus.face_jpeg(restarts=4), id="restart-markers"),
    pytest.param(lambda: corpus.jpeg(corpus.gray(corpus.face_frame())), id="gray"),
    pytest.param(corpus.cmyk_jpeg, id="cmyk"),
]


@pytest.mark.parametrize("make", COMPLETE_SCANS)
def test_complete_scans_pass(make: Make) -> None:
    data = make()

    check_jpeg_scans(data, inspect_image(data, **LIMITS))


BROKEN_SCANS = [
    pytest.param(
        lambda: corpus.truncated(corpus.face_jpeg(progressive=True), 0.3, closed=True),
        id="progressive-cut-30-percent-closed-with-eoi",
    ),
    pytest.param(
        lambda: corpus.with_restarts_swapped(corpus.face_jpeg(restarts=4)),
        id="restart-markers-out-of-order",
    ),
    pytest.param(
        lambda: corpus.without_segment(corpus.face_jpeg(restarts=4), 0xDD),
        id="restart-markers-without-interval",
    ),
    pytest.param(
        lambda: corpus.flipped_stuffed_byte(corpus.face_jpeg()),
        id="bit-flip-in-stuffed-byte",
    ),
    pytest.param(
        lambda: corpus.flipped_into_marker(corpus.face_jpeg()),
        id="bit-flip-forms-marker",
    ),
]


@pytest.mark.parametrize("make", BROKEN_SCANS)
def test_broken_scans_are_undecodable(make: Make) -> None:
    data = make()
    header = inspect_image(data, **LIMITS)

    with pytest.raises(UndecodableImage):
        check_jpeg_scans(data, header)


def test_missing_scans_are_counted() -> None:
    data = corpus.truncated(corpus.face_jpeg(progressive=True), 0.3, closed=True)

    with pytest.raises(UndecodableImage) as refused:
        check_jpeg_scans(data, inspect_image(data, **LIMITS))

    assert refused.value.extensions["missing_coefficients"] > 0
