"""Recognizer drift service: gallery against face links, repaired. Service layer.

How the recognizer's gallery drifts from the people and their face links, and
the repair that brings it back.

A repair changes faces, so it holds the faces lock the enrollment service
shares (see ``services.enrollment``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from edge_agent.clients.recognition.base import Recognizer, SubjectExample
from edge_agent.clients.storage.face_images import FaceImageStore
from edge_agent.clients.storage.people import PeopleRepository
from edge_agent.errors import InvalidInput, NotFound, Refused
from edge_agent.models import FaceExample, Person, PersonStatus, Principal
from edge_agent.services.audit import AuditAction, AuditService
from edge_agent.services.enrollment import load_stored_images

logger = logging.getLogger(__name__)


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


class RecognizerDriftService:
    def __init__(
        self,
        repository: PeopleRepository,
        recognizer: Recognizer,
        images: FaceImageStore,
        audit: AuditService,
        faces_lock: asyncio.Lock,
    ) -> None:
        self._repository = repository
        self._recognizer = recognizer
        self._images = images
        self._audit = audit
        self._faces_lock = faces_lock

    async def reconcile(self, repair: bool, actor: Principal) -> ReconcileReport:
        """Compare the recognizer's gallery with the people and their face
        links; with ``repair``, delete orphans and unlinked examples and enroll
        missing ones again from the stored images. The report says what was
        found (before any repair) and what the repair did."""
        report = await self._drift()
        if not repair or report.clean:
            return report

        done = RepairProgress()
        try:
            async with self._faces_lock:
                await self._repair(report, done)
        finally:
            # Audited even when an unreachable recognizer cuts it short: what
            # was changed until then stays changed.
            await self._audit.record(
                actor, AuditAction.RECOGNIZER_REPAIRED, details=done.details()
            )
        return done.applied_to(report)

    async def _drift(self) -> ReconcileReport:
        examples = await self._recognizer.list_examples()
        people = await self._repository.all(include_erased=True)
        faces = await self._repository.all_faces()
        report = find_drift(people, faces, examples)
        logger.info(
            "Recognizer drift: %d orphan subjects, %d missing, %d unlinked examples",
            len(report.orphan_subjects),
            len(report.missing),
            len(report.unlinked),
        )
        return report

    async def _repair(self, report: ReconcileReport, done: RepairProgress) -> None:
        for subject in report.orphan_subjects:
            await self._recognizer.delete_subject_examples(subject)
            done.subjects_deleted += 1

        for example in report.unlinked:
            linked = await self._repository.list_faces(example.subject)
            remaining = await load_stored_images(self._images, example.subject, linked)
            await self._recognizer.delete_example(example.image_id, remaining)
            done.examples_deleted += 1

        for item in report.missing:
            try:
                await self._enroll_missing(item)
                done.examples_added += 1
            except (Refused, InvalidInput, NotFound) as exc:
                # This face cannot be repaired (its image is gone, or the
                # recognizer no longer finds a face in it); the others can.
                done.failures.append(f"face {item.face_id}: {exc.detail}")

    async def _enroll_missing(self, item: MissingExample) -> None:
        """Send the stored image of one face again, with the person's other
        images (a recognizer that replaces registrations gets them all)."""
        faces = await self._repository.list_faces(item.person_id)
        face = next((f for f in faces if f.id == item.face_id), None)
        if face is None:
            raise NotFound("the face link is gone")
        image = await asyncio.to_thread(
            self._images.load, item.person_id, face.image_sha256
        )
        if image is None:
            raise NotFound("its stored image is gone; enroll the person again")

        others = await load_stored_images(
            self._images, item.person_id, [f for f in faces if f.id != face.id]
        )
        example_id = await self._recognizer.add_example(item.person_id, image, others)
        await self._repository.set_example_id(face.id, example_id)
        logger.info("Enrolled face %s of person %s again", face.id, item.person_id)
