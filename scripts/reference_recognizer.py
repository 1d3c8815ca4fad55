"""Reference face recognition server for demos and tests of the appliance.

In production the appliance talks to CompreFace or CodeProject.AI.  This
small aiohttp server speaks the subset of both face APIs that the appliance
uses, over one shared gallery (a subject enrolled through one API is known to
the other), so the appliance can be run and tested without the real service.
It is meant for demos and tests only: its "recognition" compares coarse
grayscale layouts, which tells the synthetic faces of ``synthetic_faces.py``
apart but not real people.

Every route but ``/status`` needs the API key, as the ``x-api-key`` header or
as ``Authorization: Bearer KEY``.  (The real CodeProject.AI has no
authentication; checking the key here shows that a client sends it.)

CompreFace endpoints:

* ``POST /api/v1/recognition/recognize`` - recognise the faces in an image
* ``POST /api/v1/recognition/faces?subject=NAME`` - enroll an example
* ``GET /api/v1/recognition/faces`` - list examples, paginated
* ``DELETE /api/v1/recognition/faces?subject=NAME`` - delete examples
* ``DELETE /api/v1/recognition/faces/{image_id}`` - delete one example
* ``GET /api/v1/recognition/subjects`` - list subjects
* ``DELETE /api/v1/recognition/subjects/{subject}`` - delete a subject

CodeProject.AI endpoints (multipart or urlencoded forms, all ``POST``):

* ``/v1/vision/face`` (``image``, ``min_confidence``) - detect faces only
* ``/v1/vision/face/recognize`` (``image``, ``min_confidence``) - the best
  subject of each face, or ``"unknown"`` with confidence 0 below
  ``min_confidence`` (default 0.67, as the real module's)
* ``/v1/vision/face/register`` (``userid`` and one or more files, any part
  name: ``image``, ``image1`` .. ``imageN``) - REPLACES the subject's
  examples with the faces in the files, as the real service replaces its
  registration; files without a face are skipped
* ``/v1/vision/face/list`` - the subjects
* ``/v1/vision/face/delete`` (``userid``) - delete a subject; an unknown one
  is no error

and ``GET /status``, a readiness probe.

CompreFace errors are ``{"message": ..., "code": ...}`` with CompreFace's
numbering:

====  ======  ==========================================================
code  status  meaning
====  ======  ==========================================================
10    401     the API key is wrong
11    404     no example has that image id
20    401     the ``x-api-key`` header is missing
26    400     the bytes are not an image OpenCV can decode (or bad base64)
28    400     no face is found in the given image
33    400     a required query parameter (``subject``) is missing
34    400     the ``file`` part or field is missing
36    400     a query parameter has a wrong value
42    404     no such subject
0     -       any other HTTP error (unknown route, body too large, ...)
====  ======  ==========================================================

CodeProject.AI errors are ``{"success": false, "error": ...}`` with the
status above (DeepStack's habit; some CodeProject.AI versions answer 200),
for example ``"No face found in image"`` from ``recognize`` and
``"No face detected"`` from ``register``.

Test aid - fault injection.  ``POST /_faults`` with a JSON object sets any of
``fail_next`` (answer that many following API calls with an error),
``status`` (its HTTP status, default 503) and ``delay_s`` (hold every API
call that long before answering, to make the server slow); ``GET /_faults``
shows them with ``in_flight``, ``max_in_flight`` and ``requests`` (API calls
being served, the most at once, and the total); ``DELETE /_faults`` clears
faults and counters.  These routes need the API key too, and they exist so
that tests can make the server fail transiently or be slow; they are not
part of either API.

How faces are compared: the image is decoded with OpenCV and split into
content regions (below); where OpenCV still ships the Haar frontal face
cascade (it moved out of the main package in OpenCV 5) each face it detects
in a region is one result, otherwise the whole region is one face.  A
near-uniform crop is "no face".  The descriptor is the crop in
grayscale, shrunk to 24x24, minus its mean, L2-normalised; similarity is the
cosine, clipped to [0, 1].  Like CompreFace, ``prediction_count`` ranks
examples, so a subject with several examples can be proposed more than
once; the CodeProject route names the subject of the best example.

Test aid - several faces, and small ones, without a detector.  A column whose
grey level is the same from top to bottom (standard deviation under
``FLAT_MAX_STD``) is flat; a band of at least ``GUTTER_MIN_PX`` flat columns
separates two regions, and each region is trimmed of flat rows above and
below.  So pictures placed side by side with a one-grey gutter between them
are one face each, and a small picture on a one-grey canvas is a face of its
own small size, which lets tests of enrollment refuse images with two faces
or a face too small.  A camera picture, noisy everywhere, is one region: the
whole frame, as before; so is a frame whose every column is flat (a
left-to-right gradient), which is then judged as a whole.

Start it with::

    python scripts/reference_recognizer.py --port 8000 --api-key KEY \\
        --store .demo/recognizer.json
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import dataclasses
import hmac
import json
import logging
import math
import os
import sys
import threading
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from aiohttp import BodyPartReader, web
from numpy.typing import NDArray

LOGGER = logging.getLogger(__name__)

Descriptor = NDArray[np.float32]
# x_min, y_min, x_max, y_max; end-exclusive.
Box = tuple[int, int, int, int]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

DESCRIPTOR_SIDE = 24
MIN_CONTRAST = 4.0
# Flat bands at least this wide separate faces (a test aid, see above). A
# column is flat when its grey levels vary less than FLAT_MAX_STD: a band
# painted in one grey, as test pictures are composed; camera noise keeps real
# pictures well above it.
GUTTER_MIN_PX = 8
FLAT_MAX_STD = 1.0
MAX_IMAGE_BYTES = 5 * 1024 * 1024
API_PREFIX = "/api/v1/recognition"
FACE_PREFIX = "/v1/vision/face"
FAULTS_PATH = "/_faults"
# The real face module's default for min_confidence.
DEFAULT_MIN_CONFIDENCE = 0.67
MAX_FORM_FILES = 32
_STORE_VERSION = 1

CODE_WRONG_KEY = 10
CODE_IMAGE_NOT_FOUND = 11
CODE_MISSING_KEY = 20
CODE_UNREADABLE_IMAGE = 26
CODE_NO_FACE = 28
CODE_MISSING_PARAMETER = 33
CODE_MISSING_FILE = 34
CODE_BAD_ARGUMENT = 36
CODE_SUBJECT_NOT_FOUND = 42
CODE_OTHER = 0


class ApiError(Exception):
    """An error answer in CompreFace's ``{"message", "code"}`` shape."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class UnreadableImageError(ValueError):
    """The bytes do not decode as an image."""


class NoFaceFoundError(ValueError):
    """The image decodes but holds nothing that passes for a face."""


# --------------------------------------------------------------------------
# Faces and descriptors
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class DetectedFace:
    """One face found in an image: its box (end-exclusive) and descriptor."""

    x_min: int
    y_min: int
    x_max: int
    y_max: int
    descriptor: Descriptor

    @property
    def area(self) -> int:
        return (self.x_max - self.x_min) * (self.y_max - self.y_min)

    def box(self) -> dict[str, Any]:
        return {
            "probability": 1.0,
            "x_min": self.x_min,
            "y_min": self.y_min,
            "x_max": self.x_max,
            "y_max": self.y_max,
        }


def describe(image: NDArray[np.uint8]) -> Descriptor | None:
    """Turn a BGR or grayscale picture into a unit descriptor.

    Returns None for a near-uniform picture, which cannot hold a face.
    """
    gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if gray.size == 0 or float(gray.std()) < MIN_CONTRAST:
        return None

    side = (DESCRIPTOR_SIDE, DESCRIPTOR_SIDE)
    small = cv2.resize(gray, side, interpolation=cv2.INTER_AREA).astype(np.float32)
    small -= small.mean()
    norm = float(np.linalg.norm(small))
    if norm < 1e-6:
        return None

    return (small / norm).ravel()


def similarity(first: Descriptor, second: Descriptor) -> float:
    """Cosine similarity of two descriptors, clipped to [0, 1]."""
    return float(np.clip(np.dot(first, second), 0.0, 1.0))


def decode_image(data: bytes) -> NDArray[np.uint8]:
    """Decode image bytes to BGR, or raise UnreadableImageError."""
    if not data:
        raise UnreadableImageError("the image is empty")

    try:
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    except cv2.error as exc:
        raise UnreadableImageError(str(exc)) from exc

    if image is None:
        raise UnreadableImageError("the bytes are not a known image format")
    return np.asarray(image, dtype=np.uint8)


def _load_cascade() -> Any | None:
    # OpenCV 5 moved the Haar cascades to the contrib package, so both the
    # class and its data files may be missing; the whole frame is used then.
    classifier = getattr(cv2, "CascadeClassifier", None)
    folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
    if classifier is None or folder is None:
        return None

    path = Path(folder) / "haarcascade_frontalface_default.xml"
    if not path.is_file():
        return None

    cascade = classifier(str(path))
    return None if cascade.empty() else cascade


class FaceAnalyzer:
    """Finds faces in image bytes; safe to call from several worker threads."""

    def __init__(self, cascade: Any | None) -> None:
        """``cascade`` is an OpenCV CascadeClassifier, or None for whole frames."""
        self._cascade = cascade
        self._lock = threading.Lock()

    @classmethod
    def default(cls) -> FaceAnalyzer:
        """An analyzer with OpenCV's frontal face cascade, where it exists."""
        return cls(_load_cascade())

    @property
    def uses_detector(self) -> bool:
        return self._cascade is not None

    def analyse(self, data: bytes) -> list[DetectedFace]:
        """Faces in the image, biggest first; raises on no image or no face."""
        image = decode_image(data)
        gray = np.asarray(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), dtype=np.uint8)

        faces = [face for box in self._boxes(gray) if (face := _face(gray, box))]
        if not faces:
            raise NoFaceFoundError("No face is found in the given image")
        return sorted(faces, key=lambda face: face.area, reverse=True)

    def _boxes(self, gray: NDArray[np.uint8]) -> list[Box]:
        height, width = gray.shape
        regions = content_regions(gray) or [(0, 0, width, height)]
        if self._cascade is None:
            return regions

        boxes: list[Box] = []
        for region in regions:
            boxes += self._detect(gray, region) or [region]
        return boxes

    def _detect(self, gray: NDArray[np.uint8], region: Box) -> list[Box]:
        if self._cascade is None:
            return []
        x_min, y_min, x_max, y_max = region
        crop = np.ascontiguousarray(gray[y_min:y_max, x_min:x_max])
        min_side = max(24, min(x_max - x_min, y_max - y_min) // 8)

        # The cascade keeps scratch buffers, so one thread at a time uses it.
        with self._lock:
            found = self._cascade.detectMultiScale(
                cv2.equalizeHist(crop), 1.1, 5, minSize=(min_side, min_side)
            )
        return [
            (x_min + int(x), y_min + int(y), x_min + int(x + w), y_min + int(y + h))
            for x, y, w, h in found
        ]


def content_regions(gray: NDArray[np.uint8]) -> list[Box]:
    """The side-by-side regions of a picture that are not flat, trimmed.

    See "Test aid - several faces" in the module docstring.
    """
    columns = np.flatnonzero(gray.std(axis=0) >= FLAT_MAX_STD)
    regions = []
    for x_min, x_max in _runs(columns, GUTTER_MIN_PX):
        rows = np.flatnonzero(gray[:, x_min:x_max].std(axis=1) >= FLAT_MAX_STD)
        if rows.size:
            regions.append((x_min, int(rows[0]), x_max, int(rows[-1]) + 1))
    return regions


def _runs(indices: NDArray[np.intp], min_gap: int) -> list[tuple[int, int]]:
    """Sorted indices grouped into end-exclusive runs; gaps narrower than
    ``min_gap`` stay inside a run."""
    if indices.size == 0:
        return []

    breaks = np.flatnonzero(np.diff(indices) > min_gap)
    starts = [int(indices[0]), *(int(indices[i + 1]) for i in breaks)]
    ends = [*(int(indices[i]) + 1 for i in breaks), int(indices[-1]) + 1]
    return list(zip(starts, ends, strict=True))


def _face(gray: NDArray[np.uint8], box: Box) -> DetectedFace | None:
    x_min, y_min, x_max, y_max = box
    descriptor = describe(gray[y_min:y_max, x_min:x_max])
    if descriptor is None:
        return None

    return DetectedFace(x_min, y_min, x_max, y_max, descriptor)


# --------------------------------------------------------------------------
# Enrolled examples
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    """One enrolled picture of a subject, kept only as its descriptor."""

    image_id: str
    subject: str
    descriptor: Descriptor


@dataclass(frozen=True)
class Gallery:
    """An immutable snapshot of the examples, for matching off the loop."""

    subjects: tuple[str, ...]
    matrix: NDArray[np.float32]

    def rank(self, descriptor: Descriptor, count: int) -> list[dict[str, Any]]:
        """The ``count`` most similar examples' subjects, best first.

        As CompreFace does, examples are ranked rather than subjects, so a
        subject can appear once per example.
        """
        scores = self._scores(descriptor)
        order = np.argsort(-scores, kind="stable")[:count]
        return [
            {"subject": self.subjects[i], "similarity": round(float(scores[i]), 5)}
            for i in order.tolist()
        ]

    def best(self, descriptor: Descriptor) -> tuple[str, float] | None:
        """The subject of the most similar example and its similarity."""
        scores = self._scores(descriptor)
        if scores.size == 0:
            return None

        index = int(np.argmax(scores))
        return self.subjects[index], round(float(scores[index]), 5)

    def _scores(self, descriptor: Descriptor) -> NDArray[np.float32]:
        scores = np.clip(self.matrix @ descriptor, 0.0, 1.0)
        return np.asarray(scores, dtype=np.float32)


class FaceCollection:
    """Enrolled examples in memory, optionally mirrored to a JSON file.

    Mutations run on the event loop only; matching works on a Gallery
    snapshot so that worker threads never see the dict change under them.
    """

    def __init__(self, path: Path | None = None) -> None:
        self._path = path
        self._examples: dict[str, Example] = {}
        self._gallery: Gallery | None = None
        self._save_lock = asyncio.Lock()

    def add(self, subject: str, descriptor: Descriptor) -> Example:
        example = Example(str(uuid.uuid4()), subject, descriptor)
        self._examples[example.image_id] = example
        self._gallery = None
        return example

    def replace(self, subject: str, descriptors: Sequence[Descriptor]) -> bool:
        """Make ``descriptors`` the subject's only examples; True if it had some."""
        existed = self.remove_subject(subject) > 0
        for descriptor in descriptors:
            self.add(subject, descriptor)
        return existed

    def remove(self, image_id: str) -> Example | None:
        example = self._examples.pop(image_id, None)
        self._gallery = None
        return example

    def remove_subject(self, subject: str | None) -> int:
        """Delete a subject's examples, or every example when subject is None."""
        doomed = [e.image_id for e in self.examples(subject)]
        for image_id in doomed:
            del self._examples[image_id]

        self._gallery = None
        return len(doomed)

    def examples(self, subject: str | None = None) -> list[Example]:
        return [
            example
            for example in self._examples.values()
            if subject is None or example.subject == subject
        ]

    def subjects(self) -> list[str]:
        return sorted({example.subject for example in self._examples.values()})

    def gallery(self) -> Gallery:
        if self._gallery is None:
            self._gallery = _build_gallery(list(self._examples.values()))
        return self._gallery

    async def load(self) -> None:
        """Read the store file, if there is one."""
        if self._path is None or not self._path.exists():
            return

        text = await asyncio.to_thread(self._path.read_text, "utf-8")
        for example in _parse_store(text):
            self._examples[example.image_id] = example
        self._gallery = None
        LOGGER.info("loaded %d examples from %s", len(self._examples), self._path)

    async def save(self) -> None:
        """Write the store file so that a restart keeps enrollments."""
        if self._path is None:
            return

        # The lock keeps an older snapshot from landing after a newer one.
        async with self._save_lock:
            text = _format_store(self.examples())
            await asyncio.to_thread(_write_atomically, self._path, text)


def _build_gallery(examples: Sequence[Example]) -> Gallery:
    if not examples:
        return Gallery((), np.zeros((0, DESCRIPTOR_SIDE**2), dtype=np.float32))

    matrix = np.stack([example.descriptor for example in examples])
    return Gallery(tuple(example.subject for example in examples), matrix)


def _format_store(examples: Sequence[Example]) -> str:
    records = [
        {
            "image_id": example.image_id,
            "subject": example.subject,
            "descriptor": base64.b64encode(
                example.descriptor.astype("<f4").tobytes()
            ).decode("ascii"),
        }
        for example in examples
    ]
    return json.dumps({"version": _STORE_VERSION, "examples": records})


def _parse_store(text: str) -> list[Example]:
    document = json.loads(text)
    if document.get("version") != _STORE_VERSION:
        raise ValueError(f"unsupported store version {document.get('version')!r}")

    return [
        Example(
            image_id=str(record["image_id"]),
            subject=str(record["subject"]),
            descriptor=np.frombuffer(
                base64.b64decode(record["descriptor"]), dtype="<f4"
            ).astype(np.float32),
        )
        for record in document["examples"]
    ]


def _write_atomically(path: Path, text: str) -> None:
    # Writing beside the target and renaming means a crash mid-write leaves
    # the previous store intact rather than half a JSON document.
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


# --------------------------------------------------------------------------
# Fault injection (a test aid)
# --------------------------------------------------------------------------


@dataclass
class Faults:
    """Failures and delays injected into API calls, and counts of those calls.

    Lives on the event loop only, so plain counters are safe.
    """

    fail_next: int = 0
    status: int = 503
    delay_s: float = 0.0
    in_flight: int = 0
    max_in_flight: int = 0
    requests: int = 0

    def view(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def update(self, document: object) -> None:
        """Set the faults a JSON document names; raise ValueError if it is bad."""
        if not isinstance(document, dict) or not set(document) <= _FAULT_FIELDS:
            raise ValueError(f"expected an object with keys among {_FAULT_NAMES}")

        fail_next = document.get("fail_next", self.fail_next)
        status = document.get("status", self.status)
        delay_s = document.get("delay_s", self.delay_s)
        if not (_is_int(fail_next) and fail_next >= 0):
            raise ValueError("fail_next must be an integer >= 0")
        if not (_is_int(status) and 400 <= status <= 599):
            raise ValueError("status must be an HTTP error status, 400 to 599")
        if not (_is_number(delay_s) and 0 <= delay_s <= 60):
            raise ValueError("delay_s must be a number of seconds, 0 to 60")
        self.fail_next, self.status, self.delay_s = fail_next, status, float(delay_s)

    def clear(self) -> None:
        for field in dataclasses.fields(self):
            setattr(self, field.name, field.default)

    def take_failure(self) -> bool:
        """Whether the call arriving now is one of those to fail."""
        if self.fail_next <= 0:
            return False
        self.fail_next -= 1
        return True


_FAULT_FIELDS = frozenset({"fail_next", "status", "delay_s"})
_FAULT_NAMES = ", ".join(sorted(_FAULT_FIELDS))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return _is_int(value) or isinstance(value, float)


# --------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------

API_KEY = web.AppKey("api_key", str)
COLLECTION = web.AppKey("collection", FaceCollection)
ANALYZER = web.AppKey("analyzer", FaceAnalyzer)
FAULTS = web.AppKey("faults", Faults)


def _error_response(
    request: web.Request,
    status: int,
    code: int,
    message: str,
    headers: dict[str, str] | None = None,
) -> web.Response:
    # Each API family answers errors in its own shape.
    if request.path.startswith(FACE_PREFIX):
        body: dict[str, Any] = {"success": False, "error": message}
    else:
        body = {"message": message, "code": code}
    return web.json_response(body, status=status, headers=headers)


@web.middleware
async def _errors_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return _error_response(request, exc.status, exc.code, exc.message)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _error_response(
            request, exc.status, CODE_OTHER, exc.reason, headers=_allow(exc)
        )


def _allow(exc: web.HTTPException) -> dict[str, str]:
    # A 405 must keep telling the client which methods the route accepts.
    allow = exc.headers.get("Allow")
    return {"Allow": allow} if allow else {}


@web.middleware
async def _api_key_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    if request.path == "/status":
        return await handler(request)

    supplied = _supplied_key(request)
    if supplied is None:
        raise ApiError(401, CODE_MISSING_KEY, "Missing header: x-api-key")

    expected = request.app[API_KEY]
    if not hmac.compare_digest(supplied.encode(), expected.encode()):
        raise ApiError(401, CODE_WRONG_KEY, "The x-api-key header is not valid")
    return await handler(request)


def _supplied_key(request: web.Request) -> str | None:
    key = request.headers.get("x-api-key")
    if key is not None:
        return key

    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


@web.middleware
async def _faults_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    if request.path in ("/status", FAULTS_PATH):
        return await handler(request)

    faults = request.app[FAULTS]
    faults.requests += 1
    faults.in_flight += 1
    faults.max_in_flight = max(faults.max_in_flight, faults.in_flight)
    try:
        # Decided on arrival, so "fail the next n" means the next n to come.
        failing = faults.take_failure()
        if faults.delay_s:
            await asyncio.sleep(faults.delay_s)
        if failing:
            raise ApiError(faults.status, CODE_OTHER, "Injected fault")
        return await handler(request)
    finally:
        faults.in_flight -= 1


def _int_param(request: web.Request, name: str, default: int, minimum: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default

    try:
        value = int(raw)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        message = f"{name} must be an integer >= {minimum}"
        raise ApiError(400, CODE_BAD_ARGUMENT, message)
    return value


def _check_det_prob_threshold(request: web.Request) -> None:
    # Every face found here has probability 1.0, so any valid threshold
    # passes; the value is still checked so that client bugs show up.
    raw = request.query.get("det_prob_threshold")
    if raw is None or raw == "":
        return

    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:
        message = "det_prob_threshold must be between 0.0 and 1.0"
        raise ApiError(400, CODE_BAD_ARGUMENT, message)


async def _read_image(request: web.Request) -> bytes:
    """The uploaded image, from multipart ``file`` or JSON base64 ``file``."""
    if request.content_type == "multipart/form-data":
        return await _read_multipart_file(request)
    if request.content_type == "application/json":
        return await _read_json_file(request)

    message = "Required request part 'file' is not present"
    raise ApiError(400, CODE_MISSING_FILE, message)


async def _read_multipart_file(request: web.Request) -> bytes:
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if isinstance(part, BodyPartReader) and part.name == "file":
            return await _read_part(part)
        await part.release()

    message = "Required request part 'file' is not present"
    raise ApiError(400, CODE_MISSING_FILE, message)


async def _read_part(part: BodyPartReader) -> bytes:
    # Reading chunk by chunk enforces the size limit without buffering an
    # oversized upload first.
    data = bytearray()
    while chunk := await part.read_chunk():
        data.extend(chunk)
        if len(data) > MAX_IMAGE_BYTES:
            raise web.HTTPRequestEntityTooLarge(MAX_IMAGE_BYTES, len(data))
    return bytes(data)


async def _read_json_file(request: web.Request) -> bytes:
    try:
        document = await request.json()
    except ValueError as exc:
        raise ApiError(400, CODE_BAD_ARGUMENT, "The body is not valid JSON") from exc

    encoded = document.get("file") if isinstance(document, dict) else None
    if not isinstance(encoded, str):
        raise ApiError(400, CODE_MISSING_FILE, "Required field 'file' is not present")

    # Browsers hand out data URLs; the base64 payload follows the comma.
    payload = encoded.split(",", 1)[1] if encoded.startswith("data:") else encoded
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        message = "Cannot parse image: the file field is not valid base64"
        raise ApiError(400, CODE_UNREADABLE_IMAGE, message) from exc


async def _analyse(request: web.Request, data: bytes) -> list[DetectedFace]:
    analyzer = request.app[ANALYZER]
    try:
        return await asyncio.to_thread(analyzer.analyse, data)
    except UnreadableImageError as exc:
        message = f"Cannot parse image: {exc}"
        raise ApiError(400, CODE_UNREADABLE_IMAGE, message) from exc
    except NoFaceFoundError as exc:
        raise ApiError(400, CODE_NO_FACE, str(exc)) from exc


def _match(
    faces: Sequence[DetectedFace], gallery: Gallery, count: int
) -> list[dict[str, Any]]:
    return [
        {"box": face.box(), "subjects": gallery.rank(face.descriptor, count)}
        for face in faces
    ]


async def status(request: web.Request) -> web.Response:
    """Readiness probe; needs no API key."""
    return web.json_response({"status": "OK"})


async def recognize(request: web.Request) -> web.Response:
    """Who is in the uploaded image."""
    limit = _int_param(request, "limit", 0, 0)
    count = _int_param(request, "prediction_count", 1, 1)
    _check_det_prob_threshold(request)

    faces = await _analyse(request, await _read_image(request))
    if limit:
        faces = faces[:limit]

    gallery = request.app[COLLECTION].gallery()
    result = await asyncio.to_thread(_match, faces, gallery, count)
    return web.json_response({"result": result})


async def add_face(request: web.Request) -> web.Response:
    """Enroll the biggest face of the uploaded image as an example."""
    subject = request.query.get("subject", "").strip()
    if not subject:
        message = "Required request parameter 'subject' is not present"
        raise ApiError(400, CODE_MISSING_PARAMETER, message)
    _check_det_prob_threshold(request)

    faces = await _analyse(request, await _read_image(request))
    collection = request.app[COLLECTION]
    example = collection.add(subject, faces[0].descriptor)
    await collection.save()

    LOGGER.info("enrolled %s as %s", subject, example.image_id)
    body = {"image_id": example.image_id, "subject": subject}
    return web.json_response(body, status=201)


async def list_faces(request: web.Request) -> web.Response:
    """Enrolled examples, optionally of one subject, a page at a time."""
    page = _int_param(request, "page", 0, 0)
    size = _int_param(request, "size", 20, 1)
    subject = request.query.get("subject") or None

    examples = request.app[COLLECTION].examples(subject)
    chosen = examples[page * size : (page + 1) * size]
    return web.json_response(
        {
            "faces": [{"image_id": e.image_id, "subject": e.subject} for e in chosen],
            "page_number": page,
            "page_size": size,
            "total_pages": math.ceil(len(examples) / size),
            "total_elements": len(examples),
        }
    )


async def delete_faces(request: web.Request) -> web.Response:
    """Delete a subject's examples; without a subject, every example."""
    subject = request.query.get("subject") or None
    collection = request.app[COLLECTION]
    deleted = collection.remove_subject(subject)

    await collection.save()
    return web.json_response({"deleted": deleted})


async def delete_face(request: web.Request) -> web.Response:
    """Delete one example by its image id."""
    image_id = request.match_info["image_id"]
    collection = request.app[COLLECTION]
    example = collection.remove(image_id)
    if example is None:
        message = f"Image with ID = {image_id} not found"
        raise ApiError(404, CODE_IMAGE_NOT_FOUND, message)

    await collection.save()
    return web.json_response({"image_id": image_id, "subject": example.subject})


async def list_subjects(request: web.Request) -> web.Response:
    """Every subject with at least one example."""
    return web.json_response({"subjects": request.app[COLLECTION].subjects()})


async def delete_subject(request: web.Request) -> web.Response:
    """Delete a subject and all its examples."""
    subject = request.match_info["subject"]
    collection = request.app[COLLECTION]
    if collection.remove_subject(subject) == 0:
        message = f"Subject {subject} not found"
        raise ApiError(404, CODE_SUBJECT_NOT_FOUND, message)

    await collection.save()
    return web.json_response({"subject": subject})


# CodeProject.AI face API ---------------------------------------------------


@dataclass
class _Form:
    """A posted form: its text fields, and its files in the order sent."""

    fields: dict[str, str]
    files: list[bytes]


async def _read_form(request: web.Request) -> _Form:
    if request.content_type == "multipart/form-data":
        return await _read_multipart_form(request)
    if request.content_type == "application/x-www-form-urlencoded":
        posted = await request.post()
        fields = {k: v for k, v in posted.items() if isinstance(v, str)}
        return _Form(fields, [])
    return _Form({}, [])


async def _read_multipart_form(request: web.Request) -> _Form:
    form = _Form({}, [])
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            await part.release()
        elif part.filename is None:
            # Read like a file, so that the size limit holds for fields too.
            text = (await _read_part(part)).decode("utf-8", "replace")
            form.fields[part.name or ""] = text
        elif len(form.files) < MAX_FORM_FILES:
            form.files.append(await _read_part(part))
        else:
            message = f"At most {MAX_FORM_FILES} files are accepted"
            raise ApiError(400, CODE_BAD_ARGUMENT, message)
    return form


def _min_confidence(form: _Form) -> float:
    raw = form.fields.get("min_confidence", "")
    if not raw:
        return DEFAULT_MIN_CONFIDENCE

    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:
        message = "min_confidence must be between 0.0 and 1.0"
        raise ApiError(400, CODE_BAD_ARGUMENT, message)
    return value


def _first_file(form: _Form) -> bytes:
    if not form.files:
        raise ApiError(400, CODE_MISSING_FILE, "No valid image file found")
    return form.files[0]


def _userid(form: _Form) -> str:
    subject = form.fields.get("userid", "").strip()
    if not subject:
        raise ApiError(400, CODE_MISSING_PARAMETER, "user id not specified")
    return subject


async def _detect(request: web.Request, data: bytes) -> list[DetectedFace]:
    """The faces of an upload, biggest first; [] when there is none."""
    analyzer = request.app[ANALYZER]
    try:
        return await asyncio.to_thread(analyzer.analyse, data)
    except UnreadableImageError as exc:
        message = "The image provided was of an unknown type"
        raise ApiError(400, CODE_UNREADABLE_IMAGE, message) from exc
    except NoFaceFoundError:
        return []


def _corners(face: DetectedFace) -> dict[str, int]:
    return {
        "x_min": face.x_min,
        "y_min": face.y_min,
        "x_max": face.x_max,
        "y_max": face.y_max,
    }


def _name_faces(
    faces: Sequence[DetectedFace], gallery: Gallery, threshold: float
) -> list[dict[str, Any]]:
    predictions = []
    for face in faces:
        best = gallery.best(face.descriptor)
        # Below the threshold the real service names nobody and says 0.
        userid, confidence = (
            best if best is not None and best[1] >= threshold else ("unknown", 0.0)
        )
        predictions.append(
            {"userid": userid, "confidence": confidence, **_corners(face)}
        )
    return predictions


async def cp_detect(request: web.Request) -> web.Response:
    """Where the faces of the uploaded image are; no recognition."""
    form = await _read_form(request)
    _min_confidence(form)  # Every face found here has confidence 1.0.

    faces = await _detect(request, _first_file(form))
    predictions = [{"confidence": 1.0, **_corners(face)} for face in faces]
    return web.json_response(
        {"success": True, "predictions": predictions, "count": len(predictions)}
    )


async def cp_recognize(request: web.Request) -> web.Response:
    """The best subject of each face of the uploaded image."""
    form = await _read_form(request)
    threshold = _min_confidence(form)

    faces = await _detect(request, _first_file(form))
    if not faces:
        raise ApiError(400, CODE_NO_FACE, "No face found in image")

    gallery = request.app[COLLECTION].gallery()
    predictions = await asyncio.to_thread(_name_faces, faces, gallery, threshold)
    return web.json_response(
        {"success": True, "predictions": predictions, "count": len(predictions)}
    )


async def cp_register(request: web.Request) -> web.Response:
    """Replace the subject's examples with the faces of the uploaded files."""
    form = await _read_form(request)
    subject = _userid(form)
    if not form.files:
        raise ApiError(400, CODE_MISSING_FILE, "No valid image file found")

    found = [await _detect(request, data) for data in form.files]
    descriptors = [faces[0].descriptor for faces in found if faces]
    if not descriptors:
        raise ApiError(400, CODE_NO_FACE, "No face detected")

    collection = request.app[COLLECTION]
    existed = collection.replace(subject, descriptors)
    await collection.save()

    LOGGER.info("registered %s with %d faces", subject, len(descriptors))
    message = "face updated" if existed else "face added"
    return web.json_response({"success": True, "message": message})


async def cp_list(request: web.Request) -> web.Response:
    """The subjects with at least one example."""
    subjects = request.app[COLLECTION].subjects()
    return web.json_response({"success": True, "faces": subjects})


async def cp_delete(request: web.Request) -> web.Response:
    """Delete a subject's examples; an unknown subject is no error."""
    subject = _userid(await _read_form(request))
    collection = request.app[COLLECTION]
    if collection.remove_subject(subject):
        await collection.save()
    return web.json_response({"success": True})


# Fault injection routes ----------------------------------------------------


async def get_faults(request: web.Request) -> web.Response:
    """The injected faults and the counts of API calls."""
    return web.json_response(request.app[FAULTS].view())


async def set_faults(request: web.Request) -> web.Response:
    """Set faults from a JSON object: fail_next, status, delay_s."""
    try:
        document = await request.json()
    except ValueError as exc:
        raise ApiError(400, CODE_BAD_ARGUMENT, "The body is not valid JSON") from exc

    faults = request.app[FAULTS]
    try:
        faults.update(document)
    except ValueError as exc:
        raise ApiError(400, CODE_BAD_ARGUMENT, str(exc)) from exc
    LOGGER.info("faults set: %s", faults.view())
    return web.json_response(faults.view())


async def clear_faults(request: web.Request) -> web.Response:
    """Clear the faults and the counts."""
    faults = request.app[FAULTS]
    faults.clear()
    return web.json_response(faults.view())


async def _load_collection(app: web.Application) -> None:
    await app[COLLECTION].load()


def build_app(api_key: str, store: Path | None = None) -> web.Application:
    """The recognizer as an aiohttp application.

    ``store`` names a JSON file that keeps enrollments across restarts.
    """
    # Base64 inflates an upload by a third, so JSON bodies get that headroom.
    app = web.Application(
        middlewares=[_errors_middleware, _faults_middleware, _api_key_middleware],
        client_max_size=MAX_IMAGE_BYTES * 4 // 3 + 4096,
    )
    app[API_KEY] = api_key
    app[COLLECTION] = FaceCollection(store)
    app[ANALYZER] = FaceAnalyzer.default()
    app[FAULTS] = Faults()

    app.on_startup.append(_load_collection)
    _add_routes(app)
    return app


def _add_routes(app: web.Application) -> None:
    app.router.add_get("/status", status)
    app.router.add_post(f"{API_PREFIX}/recognize", recognize)
    app.router.add_post(f"{API_PREFIX}/faces", add_face)
    app.router.add_get(f"{API_PREFIX}/faces", list_faces)
    app.router.add_delete(f"{API_PREFIX}/faces", delete_faces)
    app.router.add_delete(f"{API_PREFIX}/faces/{{image_id}}", delete_face)
    app.router.add_get(f"{API_PREFIX}/subjects", list_subjects)
    app.router.add_get(f"{API_PREFIX}/subjects/", list_subjects)
    app.router.add_delete(f"{API_PREFIX}/subjects/{{subject}}", delete_subject)
    app.router.add_post(FACE_PREFIX, cp_detect)
    app.router.add_post(f"{FACE_PREFIX}/recognize", cp_recognize)
    app.router.add_post(f"{FACE_PREFIX}/register", cp_register)
    app.router.add_post(f"{FACE_PREFIX}/list", cp_list)
    app.router.add_post(f"{FACE_PREFIX}/delete", cp_delete)
    app.router.add_get(FAULTS_PATH, get_faults)
    app.router.add_post(FAULTS_PATH, set_faults)
    app.router.add_delete(FAULTS_PATH, clear_faults)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Reference face recognition server (CompreFace and "
        "CodeProject.AI face API subsets) for demos and tests."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--api-key",
        default=os.environ.get("RECOGNIZER_API_KEY"),
        help="key clients send as x-api-key (default: $RECOGNIZER_API_KEY)",
    )
    parser.add_argument(
        "--store", type=Path, help="JSON file that keeps enrollments across restarts"
    )
    args = parser.parse_args(argv)

    if not args.api_key:
        parser.error("--api-key or RECOGNIZER_API_KEY is required")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Run the server until SIGINT or SIGTERM."""
    args = _parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )

    app = build_app(args.api_key, args.store)
    if not app[ANALYZER].uses_detector:
        LOGGER.info("no Haar face cascade in this OpenCV; using whole frames")
    LOGGER.info("listening on http://%s:%d", args.host, args.port)

    # run_app turns SIGINT and SIGTERM into a graceful shutdown.
    web.run_app(
        app,
        host=args.host,
        port=args.port,
        print=None,
        access_log_format='%a "%r" %s %b %Tfs',
    )


if __name__ == "__main__":
    main()
