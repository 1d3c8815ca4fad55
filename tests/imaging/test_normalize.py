"""Imaging normalization: the corpus through prepare_image, and the quality gates."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from edge_agent.config import ImagingSettings
from edge_agent.errors import (
    ImageTooLarge,
    InvalidInput,
    PoorQuality,
    TruncatedImage,
    UndecodableImage,
    UnsupportedImage,
)
from edge_agent.imaging.decoder import decode_image
from edge_agent.imaging.normalize import PreparedImage, prepare_image
from edge_agent.imaging.quality import QualityMeasures, check_quality, measure
from tests.imaging import corpus

Make = Callable[[], bytes]
Pixels = NDArray[np.uint8]

# Every value spelled out, so the outcomes below do not move with the defaults.
BASE_SETTINGS: dict[str, Any] = {
    "max_pixels": 40_000_000,
    "max_side": 16_384,
    "max_edge": 1280,
    "jpeg_quality": 90,
    "min_brightness": 25.0,
    "max_brightness": 235.0,
    "min_sharpness": 15.0,
    "min_side": 64,
}


def _settings(**changes: Any) -> ImagingSettings:
    return ImagingSettings(**{**BASE_SETTINGS, **changes})


SETTINGS = _settings()


@dataclass(frozen=True)
class Accepted:
    """Sent on at this size, after these normalizations (none: bytes as uploaded)."""

    width: int
    height: int
    normalizations: tuple[str, ...] = ()
    decode_scale: int = 1


@dataclass(frozen=True)
class Refused:
    error: type[InvalidInput]
    reason: str | None = None


def _case(
    case_id: str, make: Make, outcome: Accepted | Refused, **settings: Any
) -> Any:
    return pytest.param(make, outcome, _settings(**settings), id=case_id)


def _oriented(orientation: int) -> Make:
    return lambda: corpus.oriented_jpeg(orientation)


def _cut(fraction: float, *, closed: bool = False) -> Make:
    return lambda: corpus.truncated(corpus.face_jpeg(), fraction, closed=closed)


ORIENTED = ("oriented",)
TRANSCODED = ("transcoded",)

CORPUS = [
    # Accepted as uploaded: JPEG, upright, 8-bit YCbCr, no larger than max_edge.
    _case("jpeg-640x480", corpus.face_jpeg, Accepted(640, 480)),
    _case("jpeg-1280x720", lambda: corpus.face_jpeg(1280, 720), Accepted(1280, 720)),
    _case(
        "jpeg-progressive",
        lambda: corpus.face_jpeg(progressive=True),
        Accepted(640, 480),
    ),
    _case(
        "jpeg-restart-markers",
        lambda: corpus.face_jpeg(restarts=4),
        Accepted(640, 480),
    ),
    _case(
        "jpeg-zero-padded",
        lambda: corpus.face_jpeg() + b"\x00" * 64,
        Accepted(640, 480),
    ),
    _case("jpeg-exif-1", _oriented(1), Accepted(640, 480)),
    # Ends in exact mid-grey, like a decode that ran out of data; the second
    # look (extra bytes before EOI) tells it is whole.
    _case(
        "jpeg-mid-grey-corner",
        lambda: corpus.jpeg(corpus.with_grey_corner(corpus.face_frame())),
        Accepted(640, 480),
    ),
    # Scaled, with reduced JPEG decoding when the frame is 2, 4, 8x too large.
    _case(
        "jpeg-1920x1080",
        lambda: corpus.face_jpeg(1920, 1080),
        Accepted(1280, 720, ("scaled",)),
    ),
    _case(
        "jpeg-1920x1080-max-edge-640",
        lambda: corpus.face_jpeg(1920, 1080),
        Accepted(640, 360, ("scaled",), decode_scale=2),
        max_edge=640,
    ),
    _case(
        "jpeg-1920x1080-max-edge-480",
        lambda: corpus.face_jpeg(1920, 1080),
        Accepted(480, 270, ("scaled",), decode_scale=4),
        max_edge=480,
    ),
    _case(
        "jpeg-3840x2160-max-edge-480",
        lambda: corpus.face_jpeg(3840, 2160),
        Accepted(480, 270, ("scaled",), decode_scale=8),
        max_edge=480,
    ),
    _case(
        "png-1920x1080-decoded-whole",
        lambda: corpus.face_png(1920, 1080),
        Accepted(1280, 720, ("scaled", "transcoded")),
    ),
    # Converted to 8-bit BGR.
    _case(
        "jpeg-gray",
        lambda: corpus.jpeg(corpus.gray(corpus.face_frame())),
        Accepted(640, 480, ("gray_to_bgr",)),
    ),
    _case("jpeg-cmyk", corpus.cmyk_jpeg, Accepted(128, 96, ("cmyk_to_bgr",))),
    _case("jpeg-ycck", corpus.ycck_jpeg, Accepted(128, 96, ("cmyk_to_bgr",))),
    _case("png-rgb", corpus.face_png, Accepted(640, 480, TRANSCODED)),
    _case(
        "png-gray",
        lambda: corpus.png(corpus.gray(corpus.face_frame())),
        Accepted(640, 480, ("gray_to_bgr", "transcoded")),
    ),
    _case(
        "png-bgra",
        lambda: corpus.png(corpus.with_alpha(corpus.face_frame())),
        Accepted(640, 480, ("dropped_alpha", "transcoded")),
    ),
    _case(
        "png-16-bit",
        lambda: corpus.png(corpus.sixteen_bit(corpus.face_frame())),
        Accepted(640, 480, ("to_8bit", "transcoded")),
    ),
    _case(
        "png-16-bit-gray",
        lambda: corpus.png(corpus.sixteen_bit(corpus.gray(corpus.face_frame()))),
        Accepted(640, 480, ("to_8bit", "gray_to_bgr", "transcoded")),
    ),
    _case(
        "png-gray-alpha",
        corpus.gray_alpha_png,
        Accepted(320, 240, ("dropped_alpha", "gray_to_bgr", "transcoded")),
    ),
    _case(
        "png-palette-trns",
        corpus.palette_png,
        Accepted(320, 240, ("dropped_alpha", "transcoded")),
    ),
    _case("webp-lossy", corpus.face_webp, Accepted(640, 480, TRANSCODED)),
    _case(
        "webp-lossless", lambda: corpus.face_webp(101), Accepted(640, 480, TRANSCODED)
    ),
    _case(
        "webp-alpha",
        lambda: corpus.webp(corpus.with_alpha(corpus.face_frame())),
        Accepted(640, 480, ("dropped_alpha", "transcoded")),
    ),
    # Turned upright: orientations 5 to 8 swap the stored 480x640 back.
    *(
        _case(
            f"jpeg-exif-{orientation}",
            _oriented(orientation),
            Accepted(640, 480, ORIENTED),
        )
        for orientation in range(2, 9)
    ),
    _case(
        "png-exif-6",
        lambda: corpus.png_with_exif(corpus.face_png(), 6),
        Accepted(480, 640, ("oriented", "transcoded")),
    ),
    _case(
        "webp-exif-8",
        lambda: corpus.webp_with_exif(corpus.face_webp(), 8, 640, 480),
        Accepted(480, 640, ("oriented", "transcoded")),
    ),
    # Not images we accept.
    _case("zero-bytes", lambda: b"", Refused(UnsupportedImage)),
    _case("random-bytes", corpus.random_bytes, Refused(UnsupportedImage)),
    _case("gif89a", corpus.gif, Refused(UnsupportedImage)),
    # Refused from the header: decompression bombs.
    _case(
        "jpeg-claims-60000x60000",
        lambda: corpus.claiming_size(corpus.face_jpeg(), 60000, 60000),
        Refused(ImageTooLarge),
    ),
    _case(
        "png-bomb-60000x60000",
        lambda: corpus.png_claiming(60000, 60000),
        Refused(ImageTooLarge),
    ),
    # Broken containers.
    _case(
        "jpeg-zero-height",
        lambda: corpus.claiming_size(corpus.face_jpeg(), 640, 0),
        Refused(UndecodableImage),
    ),
    _case(
        "jpeg-no-sof",
        lambda: corpus.without_segment(corpus.face_jpeg(), 0xC0),
        Refused(UndecodableImage),
    ),
    _case(
        "jpeg-segment-length-1",
        lambda: corpus.with_bad_length(corpus.face_jpeg()),
        Refused(UndecodableImage),
    ),
    _case(
        "png-ihdr-not-first",
        lambda: corpus.png_without_ihdr_first(corpus.face_png()),
        Refused(UndecodableImage),
    ),
    _case(
        "png-bad-chunk-length",
        lambda: corpus.png_with_bad_chunk_length(corpus.face_png()),
        Refused(UndecodableImage),
    ),
    _case(
        "webp-no-image-chunk-first",
        lambda: corpus.webp_with_unknown_first_chunk(corpus.face_webp()),
        Refused(UndecodableImage),
    ),
    # Cut short: refused from the header when the end marker is missing ...
    *(
        _case(
            f"jpeg-cut-{round(fraction * 100)}-percent",
            _cut(fraction),
            Refused(TruncatedImage),
        )
        for fraction in (0.1, 0.5, 0.9)
    ),
    _case(
        "jpeg-missing-eoi-only",
        lambda: corpus.face_jpeg()[:-2],
        Refused(TruncatedImage),
    ),
    _case(
        "png-cut-no-iend",
        lambda: corpus.truncated(corpus.face_png(), 0.5),
        Refused(TruncatedImage),
    ),
    _case(
        "webp-cut",
        lambda: corpus.truncated(corpus.face_webp(), 0.5),
        Refused(TruncatedImage),
    ),
    # ... and as decoded only in part when an EOI was put back.
    *(
        _case(
            f"jpeg-cut-{fraction * 100:g}-percent-closed-with-eoi",
            _cut(fraction, closed=True),
            Refused(UndecodableImage),
        )
        for fraction in (0.1, 0.5, 0.9, 0.995)
    ),
    _case(
        "jpeg-progressive-cut-30-percent-closed-with-eoi",
        lambda: corpus.truncated(corpus.face_jpeg(progressive=True), 0.3, closed=True),
        Refused(UndecodableImage),
    ),
    _case(
        "png-short-of-image-data",
        lambda: corpus.png_short_of_data(corpus.face_png()),
        Refused(UndecodableImage),
    ),
    # Bit flips in the scan data.
    _case(
        "jpeg-bit-flip-forms-marker",
        lambda: corpus.flipped_into_marker(corpus.face_jpeg()),
        Refused(UndecodableImage),
    ),
    _case(
        "jpeg-bit-flip-in-stuffed-byte",
        lambda: corpus.flipped_stuffed_byte(corpus.face_jpeg()),
        Refused(UndecodableImage),
    ),
    _case(
        "jpeg-restart-markers-out-of-order",
        lambda: corpus.with_restarts_swapped(corpus.face_jpeg(restarts=4)),
        Refused(UndecodableImage),
    ),
    _case(
        "jpeg-restart-markers-without-interval",
        lambda: corpus.without_segment(corpus.face_jpeg(restarts=4), 0xDD),
        Refused(UndecodableImage),
    ),
    # Known limits, kept here so a change in them shows. libjpeg itself does
    # not notice this flip (it changes one coefficient):
    _case(
        "jpeg-bit-flip-unnoticed",
        lambda: corpus.flipped_in_scan(corpus.face_jpeg(), 0.3, 4),
        Accepted(640, 480),
    ),
    # libjpeg loses step here and finds it again, warning on stderr only of
    # "54 extraneous bytes before marker 0xd9"; nothing else tells.
    _case(
        "jpeg-bit-flip-resynchronised",
        lambda: corpus.flipped_in_scan(corpus.face_jpeg(), 0.7, 0),
        Accepted(640, 480),
    ),
    # Cut inside its last scan (a refinement pass from 41% of the file on):
    # every scan is there, the lower part only lacks the last refinement bit.
    _case(
        "jpeg-progressive-cut-70-percent-closed-with-eoi",
        lambda: corpus.truncated(corpus.face_jpeg(progressive=True), 0.7, closed=True),
        Accepted(640, 480),
    ),
    # Quality gates.
    _case(
        "jpeg-all-black",
        lambda: corpus.jpeg(corpus.flat_frame(0)),
        Refused(PoorQuality, "too_dark"),
    ),
    _case(
        "jpeg-all-white",
        lambda: corpus.jpeg(corpus.flat_frame(255)),
        Refused(PoorQuality, "too_bright"),
    ),
    _case(
        "jpeg-flat-mid-grey",
        lambda: corpus.jpeg(corpus.flat_frame(128)),
        Refused(PoorQuality, "too_blurry"),
    ),
    _case(
        "jpeg-heavily-blurred",
        lambda: corpus.jpeg(corpus.blurred_frame()),
        Refused(PoorQuality, "too_blurry"),
    ),
    _case(
        "jpeg-heavily-blurred-blur-gate-off",
        lambda: corpus.jpeg(corpus.blurred_frame()),
        Accepted(640, 480),
        min_sharpness=0,
    ),
    _case(
        "jpeg-40x30",
        lambda: corpus.face_jpeg(40, 30),
        Refused(PoorQuality, "too_small"),
    ),
]


@pytest.mark.parametrize(("make", "outcome", "settings"), CORPUS)
def test_corpus(
    make: Make, outcome: Accepted | Refused, settings: ImagingSettings
) -> None:
    data = make()

    if isinstance(outcome, Refused):
        with pytest.raises(InvalidInput) as refused:
            prepare_image(data, settings)
        assert type(refused.value) is outcome.error
        assert getattr(refused.value, "reason", None) == outcome.reason
        return

    prepared = prepare_image(data, settings)
    assert _outcome(prepared) == outcome
    _assert_content(prepared, data)


def _outcome(prepared: PreparedImage) -> Accepted:
    return Accepted(
        prepared.width,
        prepared.height,
        prepared.normalizations,
        prepared.decode_scale,
    )


def _assert_content(prepared: PreparedImage, data: bytes) -> None:
    """Original bytes when nothing changed; otherwise a JPEG of the stated size."""
    if not prepared.normalizations:
        assert prepared.content == data
        assert not prepared.reencoded
        return

    assert prepared.reencoded
    assert prepared.content.startswith(corpus.SOI)
    pixels = _decode(prepared.content)
    assert pixels.shape == (prepared.height, prepared.width, 3)


def _decode(data: bytes, flags: int = cv2.IMREAD_COLOR) -> Pixels:
    return np.asarray(cv2.imdecode(np.frombuffer(data, np.uint8), flags))


# --- Orientation -----------------------------------------------------------------


def _bright_corner(pixels: Pixels) -> str:
    height, width = pixels.shape[:2]
    size = corpus.BRIGHT_CORNER // 2
    corners = {
        "top-left": pixels[:size, :size],
        "top-right": pixels[:size, width - size :],
        "bottom-left": pixels[height - size :, :size],
        "bottom-right": pixels[height - size :, width - size :],
    }
    return max(corners, key=lambda name: float(corners[name].mean()))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_oriented_output_has_bright_corner_top_left(orientation: int) -> None:
    data = corpus.oriented_jpeg(orientation)

    prepared = prepare_image(data, SETTINGS)

    assert _bright_corner(_decode(prepared.content)) == "top-left"
    assert (prepared.width, prepared.height) == (640, 480)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_applied_once_and_as_opencv_does(orientation: int) -> None:
    """OpenCV 5 applies EXIF orientation itself for IMREAD_COLOR; so must we."""
    data = corpus.oriented_jpeg(orientation)

    ours = decode_image(data).pixels
    opencv = _decode(data, cv2.IMREAD_COLOR)

    assert np.array_equal(ours, opencv)
    assert _bright_corner(ours) == "top-left"


@pytest.mark.parametrize(
    "flags",
    [
        pytest.param(cv2.IMREAD_COLOR, id="color"),
        pytest.param(cv2.IMREAD_REDUCED_COLOR_2, id="reduced-color-2"),
        pytest.param(cv2.IMREAD_GRAYSCALE, id="grayscale"),
    ],
)
def test_opencv_applies_exif_orientation_for(flags: int) -> None:
    upright = _decode(corpus.oriented_jpeg(6), flags)

    assert upright.shape[:2] in ((480, 640), (240, 320))


@pytest.mark.parametrize(
    "flags",
    [
        pytest.param(cv2.IMREAD_UNCHANGED, id="unchanged"),
        pytest.param(
            cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION, id="ignore-orientation"
        ),
    ],
)
def test_opencv_leaves_orientation_alone_for(flags: int) -> None:
    stored = _decode(corpus.oriented_jpeg(6), flags)

    assert stored.shape[:2] == (640, 480)


# --- Conversions -----------------------------------------------------------------


def test_alpha_is_composited_over_white() -> None:
    frame = corpus.face_frame()
    data = corpus.png(corpus.with_alpha(frame))

    pixels = decode_image(data).pixels

    assert np.all(pixels[:, :320] == 255)
    assert np.array_equal(pixels[:, 320:], frame[:, 320:])


def test_sixteen_bit_samples_scale_to_eight() -> None:
    frame = corpus.face_frame()

    pixels = decode_image(corpus.png(corpus.sixteen_bit(frame))).pixels

    assert np.array_equal(pixels, frame)


def test_cmyk_reads_adobe_inverted_ink() -> None:
    pixels = decode_image(corpus.cmyk_jpeg()).pixels

    cyan, black = pixels[4, 4], pixels[4, 12]
    assert min(cyan[0], cyan[1]) > 240
    assert cyan[2] < 15
    assert black.max() < 15


def test_ycck_matches_cmyk() -> None:
    cmyk = decode_image(corpus.cmyk_jpeg()).pixels.astype(int)
    ycck = decode_image(corpus.ycck_jpeg()).pixels.astype(int)

    assert np.abs(cmyk - ycck).max() <= 3


# --- Decoding --------------------------------------------------------------------


def test_partial_decode_says_so() -> None:
    data = corpus.truncated(corpus.face_jpeg(), 0.5, closed=True)

    with pytest.raises(UndecodableImage, match="only in part"):
        prepare_image(data, SETTINGS)


def test_bombs_never_reach_the_decoder(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_decoding(*args: object) -> None:
        raise AssertionError("a bomb reached cv2.imdecode")

    monkeypatch.setattr(cv2, "imdecode", no_decoding)

    with pytest.raises(ImageTooLarge):
        prepare_image(corpus.png_claiming(60000, 60000), SETTINGS)
    with pytest.raises(ImageTooLarge):
        decode_image(corpus.claiming_size(corpus.face_jpeg(), 60000, 60000))


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="zero-bytes"),
        pytest.param(corpus.gif(), id="gif89a"),
        pytest.param(b"%PDF-1.7\n", id="pdf"),
    ],
)
def test_decode_image_refuses_non_images(data: bytes) -> None:
    with pytest.raises(UnsupportedImage):
        decode_image(data)


def test_decode_image_gives_full_size_upright_bgr() -> None:
    decoded = decode_image(corpus.oriented_jpeg(8))

    assert (decoded.width, decoded.height) == (640, 480)
    assert decoded.pixels.shape == (480, 640, 3)
    assert decoded.pixels.dtype == np.uint8
    assert decoded.conversions == ("oriented",)


# --- Quality ---------------------------------------------------------------------


def test_measure_flat_frame() -> None:
    measures = measure(np.full((64, 64), 100, dtype=np.uint8))

    assert measures == QualityMeasures(brightness=100.0, sharpness=0.0)


def test_sharpness_is_the_variance_of_the_laplacian() -> None:
    gray = corpus.gray(corpus.face_frame(320, 240))
    padded = np.pad(gray.astype(np.int64), 1, mode="reflect")
    laplacian = (
        padded[:-2, 1:-1]
        + padded[2:, 1:-1]
        + padded[1:-1, :-2]
        + padded[1:-1, 2:]
        - 4 * padded[1:-1, 1:-1]
    )

    measures = measure(gray)

    assert measures.brightness == pytest.approx(gray.mean())
    assert measures.sharpness == pytest.approx(laplacian.var(), rel=1e-6)


GATES = [
    pytest.param(QualityMeasures(10, 100), 640, 480, {}, "too_dark", id="dark"),
    pytest.param(QualityMeasures(240, 100), 640, 480, {}, "too_bright", id="bright"),
    pytest.param(QualityMeasures(120, 3), 640, 480, {}, "too_blurry", id="blurry"),
    pytest.param(QualityMeasures(120, 100), 640, 40, {}, "too_small", id="small"),
    pytest.param(
        QualityMeasures(120, 3), 640, 480, {"min_sharpness": 0}, None, id="blur-off"
    ),
    pytest.param(
        QualityMeasures(1, 100),
        640,
        480,
        {"min_brightness": 0},
        None,
        id="dark-off",
    ),
    pytest.param(
        QualityMeasures(250, 100),
        640,
        480,
        {"max_brightness": 255},
        None,
        id="bright-off",
    ),
    pytest.param(
        QualityMeasures(120, 100), 640, 40, {"min_side": 1}, None, id="small-off"
    ),
    pytest.param(QualityMeasures(120, 100), 640, 480, {}, None, id="passes"),
]


@pytest.mark.parametrize(("measures", "width", "height", "changes", "reason"), GATES)
def test_quality_gates(
    measures: QualityMeasures,
    width: int,
    height: int,
    changes: dict[str, Any],
    reason: str | None,
) -> None:
    settings = _settings(**changes)

    if reason is None:
        check_quality(measures, width, height, settings)
        return
    with pytest.raises(PoorQuality) as refused:
        check_quality(measures, width, height, settings)
    assert refused.value.reason == reason
