"""Helpers for the recognition client tests: the reference server and pictures."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from aiohttp import web
from reference_recognizer import COLLECTION, FAULTS, FaceCollection, Faults
from synthetic_faces import encode_jpeg, face_image

KEY = "client-test-key"


@dataclass(frozen=True)
class Reference:
    """A reference recognizer served on loopback, with its app for inspection."""

    url: str
    app: web.Application

    @property
    def faults(self) -> Faults:
        return self.app[FAULTS]

    @property
    def collection(self) -> FaceCollection:
        return self.app[COLLECTION]


@functools.cache
def enrollment_jpeg(identity: str) -> bytes:
    """The clean enrollment picture of an identity."""
    return encode_jpeg(face_image(identity))


def camera_jpeg(identity: str, seed: int) -> bytes:
    """What a camera sees of an identity: jittered and noisy."""
    return encode_jpeg(face_image(identity, rng=np.random.default_rng(seed)))


def blank_jpeg() -> bytes:
    """A uniform picture, which holds no face."""
    return encode_jpeg(np.full((80, 80, 3), 90, np.uint8))
