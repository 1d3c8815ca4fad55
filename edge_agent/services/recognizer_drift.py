"""User service support: how the recognizer's gallery drifts from the people."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from edge_agent.clients.recognition.base import SubjectExample
from edge_agent.models import FaceExample, Person, PersonStatus


@dataclass(frozen=True, slots=True)
class MissingExample:
    """A face link whose example the recognizer does not hold."""

    person_id: str
    face_id: str


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    """How the recognizer's gallery differs from the people and face links.

    ``orphan_subjects``: subjects with no person (or an erased one);
    ``missing``: face links the recognizer lacks; ``unlinked``: examples of a
    known person that no face link names. The counts say what a repair did;
    ``failures`` what it could not do, and why.
    """

    orphan_subjects: tuple[str, ...]
    missing: tuple[MissingExample, ...]
    unlinked: tuple[SubjectExample, ...]
    repaired: bool = False
    subjects_deleted: int = 0
    examples_deleted: int = 0
    examples_added: int = 0
    failures: tuple[str, ...] = ()

    @property
    def clean(self) -> bool:
        return not (self.orphan_subjects or self.missing or self.unlinked)


@dataclass(slots=True)
class RepairProgress:
    """What a repair has done so far."""

    subjects_deleted: int = 0
    examples_deleted: int = 0
    examples_added: int = 0
    failures: list[str] = field(default_factory=list)

    def details(self) -> dict[str, int]:
        return {
            "subjects_deleted": self.subjects_deleted,
            "examples_deleted": self.examples_deleted,
            "examples_added": self.examples_added,
            "failures": len(self.failures),
        }

    def applied_to(self, report: ReconcileReport) -> ReconcileReport:
        return dataclasses.replace(
            report,
            repaired=True,
            subjects_deleted=self.subjects_deleted,
            examples_deleted=self.examples_deleted,
            examples_added=self.examples_added,
            failures=tuple(self.failures),
        )


def find_drift(
    people: Iterable[Person],
    faces: Iterable[FaceExample],
    examples: Iterable[SubjectExample],
) -> ReconcileReport:
    """Compare the recognizer's examples with the people and face links."""
    living = {p.id for p in people if p.status is not PersonStatus.ERASED}
    held: dict[str, set[str]] = defaultdict(set)
    for example in examples:
        held[example.subject].add(example.image_id)
    links = list(faces)
    linked: dict[str, set[str]] = defaultdict(set)
    for face in links:
        linked[face.person_id].add(face.example_id)

    orphans = tuple(sorted(s for s in held if s not in living))
    missing = tuple(
        MissingExample(face.person_id, face.id)
        for face in links
        if not _holds(held.get(face.person_id, set()), face)
    )
    unlinked = tuple(
        SubjectExample(image_id, subject)
        for subject, image_ids in sorted(held.items())
        if subject in living
        for image_id in sorted(image_ids)
        if image_id != subject and image_id not in linked[subject]
    )
    return ReconcileReport(orphans, missing, unlinked)


def _holds(image_ids: set[str], face: FaceExample) -> bool:
    # A recognizer that keeps one registration per subject lists the subject
    # itself rather than its images, and then holds every image sent with it.
    return face.example_id in image_ids or face.person_id in image_ids
