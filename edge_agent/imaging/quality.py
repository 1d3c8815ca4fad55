"""Imaging: measure a frame's brightness and sharpness and apply the quality gates.

Both measures use OpenCV's own statistics: on a 1280x720 frame they cost
about a tenth of the equivalent numpy reductions, or less.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from edge_agent.config import ImagingSettings
from edge_agent.errors import PoorQuality


@dataclass(frozen=True, slots=True)
class QualityMeasures:
    # Mean grey level, 0 (black) to 255 (white).
    brightness: float
    # Variance of the Laplacian: low when edges are soft (a blurred frame).
    sharpness: float


def measure(gray: NDArray[np.uint8]) -> QualityMeasures:
    """Measure a single-channel 8-bit frame."""
    brightness = float(cv2.mean(gray)[0])

    # 16-bit output holds the 3x3 Laplacian of 8-bit input (at most 4 x 255
    # either way) without the cost of floating point.
    laplacian = cv2.Laplacian(gray, cv2.CV_16S)
    _, deviation = cv2.meanStdDev(laplacian)
    return QualityMeasures(brightness, float(deviation[0, 0]) ** 2)


def check_quality(
    measures: QualityMeasures, width: int, height: int, settings: ImagingSettings
) -> None:
    """Raise :class:`PoorQuality` naming the first gate the frame fails.

    Gates, in order: "too_small" (shorter side under ``min_side``),
    "too_dark", "too_bright" (mean grey level outside the brightness bounds)
    and "too_blurry" (sharpness under ``min_sharpness``; 0 turns it off).
    """
    if min(width, height) < settings.min_side:
        raise PoorQuality(
            f"the frame is {width}x{height}, under {settings.min_side} pixels a side",
            reason="too_small",
            width=width,
            height=height,
        )

    if measures.brightness < settings.min_brightness:
        raise _refusal("too_dark", "dark", measures, settings.min_brightness)
    if measures.brightness > settings.max_brightness:
        raise _refusal("too_bright", "bright", measures, settings.max_brightness)

    if settings.min_sharpness and measures.sharpness < settings.min_sharpness:
        raise PoorQuality(
            f"the frame is too blurry (sharpness {measures.sharpness:.1f}, "
            f"at least {settings.min_sharpness:g} needed)",
            reason="too_blurry",
            sharpness=round(measures.sharpness, 1),
        )


def _refusal(
    reason: str, word: str, measures: QualityMeasures, bound: float
) -> PoorQuality:
    return PoorQuality(
        f"the frame is too {word} (mean grey level {measures.brightness:.1f}, "
        f"bound {bound:g})",
        reason=reason,
        brightness=round(measures.brightness, 1),
    )
