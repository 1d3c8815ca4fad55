"""Tests for the synthetic face generator used by demos and tests."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest
from reference_recognizer import Descriptor, decode_image, describe, similarity
from synthetic_faces import encode_jpeg, face_image, stranger_identity

IDENTITIES = ["alice", "bob", "carol", "dmitri", "emeka"]
FRAMES_PER_IDENTITY = 50


def _camera_descriptor(identity: str, rng: np.random.Generator) -> Descriptor:
    # Go through JPEG as a camera frame does on its way to the recognizer.
    data = encode_jpeg(face_image(identity, rng=rng))
    descriptor = describe(decode_image(data))
    assert descriptor is not None
    return descriptor


def _enrolled_descriptor(identity: str) -> Descriptor:
    descriptor = describe(face_image(identity))
    assert descriptor is not None
    return descriptor


def test_enrollment_picture_is_deterministic() -> None:
    first = face_image("alice")
    second = face_image("alice")

    assert first.shape == (480, 640, 3)
    assert first.dtype == np.uint8
    np.testing.assert_array_equal(first, second)


def test_different_identities_draw_different_pictures() -> None:
    assert not np.array_equal(face_image("alice"), face_image("bob"))


def test_size_is_width_then_height() -> None:
    assert face_image("alice", size=(320, 200)).shape == (200, 320, 3)


def test_picture_is_far_from_uniform() -> None:
    gray = cv2.cvtColor(face_image("alice"), cv2.COLOR_BGR2GRAY)

    assert gray.std() > 20


def test_camera_frames_are_jittered_but_reproducible() -> None:
    clean = face_image("alice")
    frame = face_image("alice", rng=np.random.default_rng(7))
    again = face_image("alice", rng=np.random.default_rng(7))

    assert frame.shape == clean.shape
    assert not np.array_equal(frame, clean)
    np.testing.assert_array_equal(frame, again)


def test_same_identity_stays_similar_and_identities_differ() -> None:
    enrolled = {identity: _enrolled_descriptor(identity) for identity in IDENTITIES}
    rng = np.random.default_rng(2024)
    same: list[float] = []
    cross: list[float] = []

    for identity, _ in itertools.product(IDENTITIES, range(FRAMES_PER_IDENTITY)):
        probe = _camera_descriptor(identity, rng)
        for other, reference in enrolled.items():
            score = similarity(probe, reference)
            (same if other == identity else cross).append(score)

    assert min(same) > 0.9, f"same-identity minimum {min(same):.4f}"
    assert max(cross) < 0.6, f"cross-identity maximum {max(cross):.4f}"


def test_encode_jpeg_round_trips() -> None:
    data = encode_jpeg(face_image("alice"), quality=80)
    decoded = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)

    assert data[:2] == b"\xff\xd8"
    assert decoded is not None
    assert decoded.shape == (480, 640, 3)


def test_stranger_identities_are_fresh_and_reproducible() -> None:
    names = [stranger_identity(np.random.default_rng(5)) for _ in range(2)]
    rng = np.random.default_rng(5)
    fresh = {stranger_identity(rng) for _ in range(20)}

    assert names[0] == names[1]
    assert names[0].startswith("stranger-")
    assert len(fresh) == 20
    assert not fresh & set(IDENTITIES)


@pytest.mark.parametrize("identity", ["", "Zoë Ångström", "x" * 500])
def test_any_identity_string_draws_a_face(identity: str) -> None:
    assert describe(face_image(identity)) is not None
