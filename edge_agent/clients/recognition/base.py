"""Recognition client interface: what the services need from any face recognizer.

An adapter (CompreFace today; CodeProject.AI or others later) implements this
protocol and translates its service's errors into
:class:`~edge_agent.errors.RecognizerUnavailable` (worth retrying) or
:class:`~edge_agent.errors.NoFaceFound` (the image has no usable face).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from edge_agent.models import RecognizedFace


@dataclass(frozen=True, slots=True)
class SubjectExample:
    """One face example the recognizer holds for a subject."""

    image_id: str
    subject: str


class Recognizer(Protocol):
    async def recognize(self, image: bytes) -> list[RecognizedFace]:
        """The faces found in the image with their candidate subjects; [] if none."""
        ...

    async def add_example(self, subject: str, image: bytes) -> str:
        """Add a face example for the subject; return the recognizer's image id."""
        ...

    async def list_examples(self, subject: str | None = None) -> list[SubjectExample]:
        """Every example, or those of one subject."""
        ...

    async def delete_example(self, image_id: str) -> None:
        """Remove one example; removing one that is gone is not an error."""
        ...

    async def delete_subject_examples(self, subject: str) -> int:
        """Remove all examples of a subject; return how many went."""
        ...
