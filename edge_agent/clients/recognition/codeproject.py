"""Recognition client for the CodeProject.AI (and DeepStack) face API.

Every call is a multipart POST under ``/v1/vision/face``:

* ``/recognize`` (``image``, ``min_confidence``) names the best subject of
  each face, or ``"unknown"`` below ``min_confidence``;
* ``/register`` (``userid``, files ``image1`` .. ``imageN``) REPLACES the
  subject's registration with one built from the files sent, so enrollment
  sends all of a subject's images at once; the service reads every file part
  whatever its name, and the numbered names follow its API reference;
* ``/list`` names the subjects, ``/delete`` (``userid``) drops one;
* ``/v1/vision/face`` (``image``) only detects faces: enrollment asks it
  first, because a register call that finds no face in the new image still
  succeeds when the other images hold faces.

What the service does not give, and what that costs:

* No per-image ids: an example id is synthesized as
  ``"{subject}#{sha256(image)[:16]}"`` and :meth:`list_examples` returns one
  entry per subject whose id is the subject itself.
* One candidate per face: the service names only its best subject, so a
  face carries one candidate, or none when the answer is ``"unknown"``.
* ``min_confidence`` is both the face detector's threshold and the match
  threshold in the service's face module (FaceProcessing ``face.py``), so it
  is not lowered to 0 to see every candidate (that would report every faint
  detection as a face); it is the configured detection threshold instead,
  and matches below it come back with no candidate. The appliance's own
  match threshold should not be below it.
* Its confidence is ``(cosine + 1) / 2``, so unrelated faces score about
  0.5, not 0: a match threshold tuned for CompreFace does not carry over.
* No authentication by default; a configured API key is sent as a bearer
  token, which the service ignores and a proxy in front of it may check.

Errors follow ``base``. Depending on its version the service answers a
refusal with HTTP 200 or 400 and ``{"success": false, "error": ...}``: a
"no face" error is :class:`~edge_agent.errors.NoFaceFound` (``[]`` for
recognition); other refusals are permanent, except a module that has not
loaded its models yet, which is transient.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp

from edge_agent.clients.recognition.base import (
    RecognizerCallFailed,
    SubjectExample,
    failure_for_status,
)
from edge_agent.clients.recognition.http import PooledSession
from edge_agent.errors import NoFaceFound
from edge_agent.models import Box, Candidate, RecognizedFace

logger = logging.getLogger(__name__)

_UNKNOWN = "unknown"
# The module loads its models on first use and says so when it cannot yet.
_NOT_READY_ERROR = "unable to load"
_ID_SEPARATOR = "#"


class CodeProjectClient:
    """Speaks to one CodeProject.AI server's face module."""

    def __init__(
        self,
        base_url: str,
        api_key: str = "",
        *,
        timeout_s: float = 5.0,
        connect_timeout_s: float = 2.0,
        min_confidence: float = 0.8,
        pool_size: int = 8,
    ) -> None:
        self._base = f"{base_url.rstrip('/')}/v1/vision/face"
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._min_confidence = min_confidence
        self._http = PooledSession(
            headers,
            timeout_s=timeout_s,
            connect_timeout_s=connect_timeout_s,
            pool_size=pool_size,
        )

    async def open(self) -> None:
        await self._http.open()

    async def close(self) -> None:
        await self._http.close()

    async def recognize(self, image: bytes) -> list[RecognizedFace]:
        form = _form(min_confidence=str(self._min_confidence))
        form.add_field("image", image, filename="frame", content_type="image/jpeg")
        try:
            body = await self._call("/recognize", form)
        except NoFaceFound:
            return []
        return [self._face(item) for item in body.get("predictions", [])]

    async def add_example(
        self, subject: str, image: bytes, others: Sequence[bytes] = ()
    ) -> str:
        if not await self._has_face(image):
            raise NoFaceFound("no face found in the enrollment image")

        await self._register(subject, [*others, image])
        return example_id(subject, image)

    async def list_examples(self, subject: str | None = None) -> list[SubjectExample]:
        body = await self._call("/list", None)
        subjects = [str(name) for name in body.get("faces", [])]
        return [
            SubjectExample(image_id=name, subject=name)
            for name in subjects
            if subject is None or name == subject
        ]

    async def delete_example(
        self, image_id: str, remaining: Sequence[bytes] = ()
    ) -> None:
        subject = subject_of(image_id)
        if not remaining:
            await self._delete(subject)
            return

        try:
            await self._register(subject, remaining)
        except NoFaceFound:
            # None of the remaining images holds a face the service can use,
            # so the subject is as good as without examples.
            await self._delete(subject)

    async def delete_subject_examples(self, subject: str) -> int:
        """Drop the subject; 1 if it had a registration (the service keeps one)."""
        known = await self.list_examples(subject)
        if known:
            await self._delete(subject)
        return len(known)

    async def _has_face(self, image: bytes) -> bool:
        form = _form(min_confidence=str(self._min_confidence))
        form.add_field("image", image, filename="probe", content_type="image/jpeg")
        # The detection route lives at the face API's root.
        body = await self._call("", form)
        return bool(body.get("predictions"))

    async def _register(self, subject: str, images: Sequence[bytes]) -> None:
        form = _form(userid=subject)
        for number, image in enumerate(images, start=1):
            form.add_field(
                f"image{number}",
                image,
                filename=f"example{number}",
                content_type="image/jpeg",
            )
        await self._call("/register", form)
        logger.debug("Registered subject %s with %d images", subject, len(images))

    async def _delete(self, subject: str) -> None:
        await self._call("/delete", _form(userid=subject))

    def _face(self, item: Mapping[str, Any]) -> RecognizedFace:
        subject = str(item.get("userid", _UNKNOWN))
        candidates = (
            ()
            if subject == _UNKNOWN
            else (Candidate(subject, float(item.get("confidence", 0.0))),)
        )
        # The answer has no detection probability; the face passed the
        # detector at min_confidence, which is therefore a lower bound.
        box = Box(
            x_min=int(item.get("x_min", 0)),
            y_min=int(item.get("y_min", 0)),
            x_max=int(item.get("x_max", 0)),
            y_max=int(item.get("y_max", 0)),
            probability=self._min_confidence,
        )
        return RecognizedFace(box=box, candidates=candidates)

    async def _call(self, path: str, form: aiohttp.FormData | None) -> dict[str, Any]:
        label = path or "/"
        status, body = await self._http.send(
            "POST", self._base + path, label, data=form
        )
        return _check(status, body, label)


def _form(**fields: str) -> aiohttp.FormData:
    # Multipart for every call, files or not, as the service's API reference
    # sends its forms.
    form = aiohttp.FormData(default_to_multipart=True)
    for name, value in fields.items():
        form.add_field(name, value)
    return form


def example_id(subject: str, image: bytes) -> str:
    """The id this adapter gives an example: subject and image digest."""
    digest = hashlib.sha256(image).hexdigest()[:16]
    return f"{subject}{_ID_SEPARATOR}{digest}"


def subject_of(image_id: str) -> str:
    """The subject of an example id; a bare subject (from a listing) is its own."""
    subject, separator, _ = image_id.rpartition(_ID_SEPARATOR)
    return subject if separator else image_id


def _check(status: int, body: dict[str, Any], path: str) -> dict[str, Any]:
    error = str(body.get("error") or body.get("message") or "no message")
    if status < 300 and body.get("success") is not False:
        return body
    if "no face" in error.lower():
        raise NoFaceFound(error)

    logger.warning("Recognizer refused %s: HTTP %d, %s", path, status, error[:200])
    if status >= 300:
        raise failure_for_status(status, error)
    raise RecognizerCallFailed(
        f"recognizer refused {path}: {error[:200]}",
        transient=_NOT_READY_ERROR in error.lower(),
        http_status=status,
    )
