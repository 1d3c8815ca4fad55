"""Recognition client interface: what the services need from any face recognizer.

An adapter (CompreFace, CodeProject.AI) implements :class:`Recognizer` and
translates its service's failures at its own boundary into the errors below,
which say whether trying again can help::

    RecognizerUnavailable (edge_agent.errors)  503
     +-- RecognizerCallFailed      transient: connection, timeout, 408/429/5xx
     |    |                        permanent: any other 4xx, a refused request
     |    +-- RecognizerKeyRejected  permanent: 401/403, the API key is wrong
     +-- CircuitOpen (resilient.py)  calls are paused after repeated failures

and :class:`~edge_agent.errors.NoFaceFound` when the image holds no usable
face, which is an answer rather than a failure. A plain
``RecognizerUnavailable`` from an adapter that does not say is taken as
transient, so that the circuit breaker still guards it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from edge_agent.errors import RecognizerUnavailable
from edge_agent.models import Candidate, RecognizedFace

# Statuses that say "not now" rather than "not this": 408 Request Timeout
# (RFC 9110, 15.5.9) and 429 Too Many Requests (RFC 6585, section 4), as a
# proxy in front of the service may answer; every 5xx (RFC 9110, 15.6).
_TRANSIENT_4XX = frozenset({408, 429})


@dataclass(frozen=True, slots=True)
class SubjectExample:
    """One face example the recognizer holds for a subject."""

    image_id: str
    subject: str


class RecognizerCallFailed(RecognizerUnavailable):
    """A call to the recognizer failed; ``transient`` says if a retry can help."""

    def __init__(
        self, detail: str, *, transient: bool, http_status: int | None = None
    ) -> None:
        super().__init__(detail)
        self.transient = transient
        # The recognizer's answer; ``status`` is the appliance's own (503).
        self.http_status = http_status


class RecognizerKeyRejected(RecognizerCallFailed):
    """The recognizer refused the API key: every call fails until it is fixed."""

    def __init__(self, detail: str, *, http_status: int | None = None) -> None:
        super().__init__(detail, transient=False, http_status=http_status)


def is_transient(exc: BaseException) -> bool:
    """Whether the same call may succeed if tried again later."""
    if isinstance(exc, RecognizerCallFailed):
        return exc.transient
    return isinstance(exc, RecognizerUnavailable)


def failure_for_status(status: int, message: str) -> RecognizerCallFailed:
    """The error for an HTTP error answer; ``message`` must hold no secret."""
    detail = f"recognizer answered HTTP {status}: {message[:200]}"
    if status in (401, 403):
        return RecognizerKeyRejected(detail, http_status=status)
    transient = status >= 500 or status in _TRANSIENT_4XX
    return RecognizerCallFailed(detail, transient=transient, http_status=status)


def merge_candidates(candidates: Iterable[Candidate]) -> tuple[Candidate, ...]:
    """One candidate per subject with its best similarity, best first."""
    best: dict[str, float] = {}
    for candidate in candidates:
        best[candidate.subject] = max(
            candidate.similarity, best.get(candidate.subject, 0.0)
        )
    ranked = sorted(best.items(), key=lambda item: item[1], reverse=True)
    return tuple(Candidate(subject, similarity) for subject, similarity in ranked)


class Recognizer(Protocol):
    """A face recognition service, seen from the appliance.

    Some services (CodeProject.AI) keep one registration per subject that each
    register call replaces; so enrollment passes the subject's other images
    along, and deletion the images that remain. Services that keep examples
    one by one (CompreFace) ignore them.
    """

    async def open(self) -> None:
        """Acquire the connection pool; call once before any other method."""
        ...

    async def close(self) -> None:
        """Release the connection pool; closing twice is harmless."""
        ...

    async def recognize(self, image: bytes) -> list[RecognizedFace]:
        """The faces in the image, each with one candidate per subject.

        Candidates are ranked by similarity (0..1), best first; [] when the
        image holds no face.
        """
        ...

    async def add_example(
        self, subject: str, image: bytes, others: Sequence[bytes] = ()
    ) -> str:
        """Add ``image`` as an example of ``subject``; return its example id.

        ``others`` are the subject's other enrolled images, for services that
        replace a subject's registration on every call. Raises NoFaceFound
        when the image holds no usable face.
        """
        ...

    async def list_examples(self, subject: str | None = None) -> list[SubjectExample]:
        """Every example, or those of one subject."""
        ...

    async def delete_example(
        self, image_id: str, remaining: Sequence[bytes] = ()
    ) -> None:
        """Remove one example; removing one that is gone is not an error.

        ``remaining`` are the images left to that subject, for services that
        must register them again (or drop the subject when none remain).
        """
        ...

    async def delete_subject_examples(self, subject: str) -> int:
        """Remove all examples of a subject; return how many went."""
        ...
