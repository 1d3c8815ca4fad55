"""Recognition client for the CompreFace REST API (``/api/v1/recognition``).

One aiohttp session with a pooled connector per process: it is called once
per frame, and aiohttp's client costs far less CPU per request than the
alternatives measured here. Every failure of the transport or the service
becomes a domain error at this boundary (see ``base``); the service's own
"no face" answer (code 28) is not a failure.

CompreFace's ``prediction_count`` counts examples, not subjects, so a subject
with several examples can be proposed several times for one face (as its
maintainers say in exadel-inc/CompreFace#805). The answer is merged here to
one candidate per subject; a face may therefore carry fewer candidates than
``prediction_count``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp

from edge_agent.clients.recognition.base import (
    SubjectExample,
    failure_for_status,
    merge_candidates,
)
from edge_agent.clients.recognition.http import PooledSession
from edge_agent.errors import NoFaceFound
from edge_agent.models import Box, Candidate, RecognizedFace

logger = logging.getLogger(__name__)

# CompreFace answers 400 with this code when it finds no face in the image.
_NO_FACE_CODE = 28


class CompreFaceClient:
    """Speaks to one CompreFace recognition service with its API key."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout_s: float = 5.0,
        connect_timeout_s: float = 2.0,
        det_prob_threshold: float = 0.8,
        prediction_count: int = 2,
        page_size: int = 100,
        pool_size: int = 8,
    ) -> None:
        self._base = f"{base_url.rstrip('/')}/api/v1/recognition"
        headers = {"x-api-key": api_key}
        self._det_prob = det_prob_threshold
        self._prediction_count = prediction_count
        self._page_size = page_size
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
        params = {
            "limit": 0,
            "prediction_count": self._prediction_count,
            "det_prob_threshold": self._det_prob,
        }
        try:
            body = await self._call("POST", "/recognize", params=params, image=image)
        except NoFaceFound:
            return []
        return [_face(item) for item in body.get("result", [])]

    async def add_example(
        self, subject: str, image: bytes, others: Sequence[bytes] = ()
    ) -> str:
        # CompreFace keeps every example on its own, so the others stay as
        # they are.
        params = {"subject": subject, "det_prob_threshold": self._det_prob}
        body = await self._call("POST", "/faces", params=params, image=image)
        return str(body["image_id"])

    async def list_examples(self, subject: str | None = None) -> list[SubjectExample]:
        examples: list[SubjectExample] = []
        page = 0
        while True:
            params: dict[str, Any] = {"page": page, "size": self._page_size}
            if subject is not None:
                params["subject"] = subject
            body = await self._call("GET", "/faces", params=params)
            examples += [_example(face) for face in body.get("faces", [])]
            page += 1
            if page >= int(body.get("total_pages", 0)):
                return examples

    async def delete_example(
        self, image_id: str, remaining: Sequence[bytes] = ()
    ) -> None:
        await self._call("DELETE", f"/faces/{image_id}", missing_ok=True)

    async def delete_subject_examples(self, subject: str) -> int:
        body = await self._call("DELETE", "/faces", params={"subject": subject})
        return int(body.get("deleted", 0))

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        image: bytes | None = None,
        missing_ok: bool = False,
    ) -> dict[str, Any]:
        data = _form(image) if image is not None else None
        status, body = await self._http.send(
            method, self._base + path, path, params=params, data=data
        )
        return _check(status, body, path, missing_ok)


def _form(image: bytes) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("file", image, filename="frame", content_type="image/jpeg")
    return form


def _check(
    status: int, body: dict[str, Any], path: str, missing_ok: bool
) -> dict[str, Any]:
    if status < 300 or (status == 404 and missing_ok):
        return body

    message = str(body.get("message", "no message"))
    if status == 400 and body.get("code") == _NO_FACE_CODE:
        raise NoFaceFound(message)
    logger.warning("Recognizer refused %s: HTTP %d, %s", path, status, message[:200])
    raise failure_for_status(status, message)


def _face(item: Mapping[str, Any]) -> RecognizedFace:
    box = item.get("box", {})
    return RecognizedFace(
        box=Box(
            x_min=int(box.get("x_min", 0)),
            y_min=int(box.get("y_min", 0)),
            x_max=int(box.get("x_max", 0)),
            y_max=int(box.get("y_max", 0)),
            probability=float(box.get("probability", 0.0)),
        ),
        candidates=merge_candidates(
            Candidate(str(s["subject"]), float(s["similarity"]))
            for s in item.get("subjects", [])
        ),
    )


def _example(face: Mapping[str, Any]) -> SubjectExample:
    return SubjectExample(image_id=str(face["image_id"]), subject=str(face["subject"]))
