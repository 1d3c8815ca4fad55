"""Enrollment service: the face examples that identify a person.

Each image passes the same inspection, normalization and quality gates as a
camera frame; the recognizer must then find exactly one face in it, at least
``min_face_px`` pixels on its shorter side (measured on the normalized image,
whose longer edge is at most ``imaging.max_edge``). The normalized image is
what the recognizer gets and what the appliance keeps. An image already
linked to the person (same SHA-256 as uploaded) is not enrolled twice.

A person's subject at the recognizer is the person's id, which never changes,
so renaming a person or correcting an employee number needs no re-enrollment.

Face changes (enroll, remove, erase, repair) run one at a time in this
process, under one lock shared by the services that make them: a recognizer
that keeps one registration per subject is sent all of a subject's images on
each change, and two changes at once would each send a set missing the
other's image. Another process (the CLI beside the daemon) is not held back
by this lock; running ``users sync-recognizer`` afterwards finds what such a
race left behind.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from edge_agent.clients.recognition.base import Recognizer
from edge_agent.clients.storage.face_images import FaceImageStore
from edge_agent.clients.storage.people import PeopleRepository
from edge_agent.clock import Clock
from edge_agent.config import ImagingSettings
from edge_agent.errors import NoFaceFound, Refused
from edge_agent.imaging.pool import DecodePool
from edge_agent.models import FaceExample, Person, Principal, RecognizedFace
from edge_agent.services.audit import AuditAction, AuditService
from edge_agent.services.people import PeopleService, living, person_target

logger = logging.getLogger(__name__)

DEFAULT_MIN_FACE_PX = 60


class SeveralFaces(Refused):
    slug = "several-faces"
    title = "Several faces found"


class FaceTooSmall(Refused):
    slug = "face-too-small"
    title = "Face too small"


@dataclass(frozen=True, slots=True)
class Enrollment:
    """The face link an enrollment made, or found: ``created`` is False when
    the same image was already enrolled for the person."""

    face: FaceExample
    created: bool


class EnrollmentService:
    def __init__(
        self,
        people: PeopleService,
        repository: PeopleRepository,
        recognizer: Recognizer,
        images: FaceImageStore,
        decoder: DecodePool,
        audit: AuditService,
        clock: Clock,
        faces_lock: asyncio.Lock,
        *,
        imaging: ImagingSettings,
        min_face_px: int = DEFAULT_MIN_FACE_PX,
    ) -> None:
        self._people = people
        self._repository = repository
        self._recognizer = recognizer
        self._images = images
        self._decoder = decoder
        self._audit = audit
        self._clock = clock
        self._faces_lock = faces_lock
        self._imaging = imaging
        self._min_face_px = min_face_px

    async def enroll(
        self, reference: str, image: bytes, actor: Principal
    ) -> Enrollment:
        """Validate the image, add it to the recognizer, and link it to the person."""
        person = living(await self._people.get(reference))
        digest = hashlib.sha256(image).hexdigest()
        known = await self.find_enrolled(person.id, digest)
        if known is not None:
            return Enrollment(known, created=False)

        content = await self.checked_face(image)
        return await self.link_face(person, digest, content, actor)

    async def list_faces(self, reference: str) -> list[FaceExample]:
        person = await self._people.get(reference)
        return await self._repository.list_faces(person.id)

    async def find_enrolled(self, person_id: str, digest: str) -> FaceExample | None:
        """The person's face link for the uploaded image with this SHA-256."""
        return await self._repository.find_face_by_image(person_id, digest)

    async def remove_face(
        self, reference: str, face_id: str, actor: Principal
    ) -> FaceExample:
        """Remove one face: from the recognizer first, then the link and image."""
        person = await self._people.get(reference)
        face = await self._repository.get_face(person.id, face_id)

        async with self._faces_lock:
            faces = await self._repository.list_faces(person.id)
            others = [f for f in faces if f.id != face.id]
            remaining = await load_stored_images(self._images, person.id, others)
            await self._recognizer.delete_example(face.example_id, remaining)
            await self._repository.remove_face(face.id)
            if face.image_sha256 not in {f.image_sha256 for f in others}:
                await asyncio.to_thread(
                    self._images.remove, person.id, face.image_sha256
                )

        await self._audit.record(
            actor,
            AuditAction.FACE_REMOVED,
            target=person_target(person),
            details={"face": face.id},
        )
        logger.info("Removed face %s of person %s", face.id, person.id)
        return face

    async def checked_face(self, image: bytes) -> bytes:
        """The normalized image, once it shows exactly one face large enough."""
        prepared = await self._decoder.prepare(image, self._imaging)
        faces = await self._recognizer.recognize(prepared.content)
        check_single_face(faces, self._min_face_px)
        return prepared.content

    async def link_face(
        self, person: Person, digest: str, content: bytes, actor: Principal
    ) -> Enrollment:
        """Enroll an image :meth:`checked_face` accepted (``digest`` is the
        SHA-256 of the image as uploaded)."""
        async with self._faces_lock:
            # Checked again under the lock: the same image may have been
            # enrolled while this one was being validated.
            known = await self.find_enrolled(person.id, digest)
            if known is not None:
                return Enrollment(known, created=False)
            face = await self._add_face(person, digest, content, actor)

        await self._audit.record(
            actor,
            AuditAction.FACE_ENROLLED,
            target=person_target(person),
            details={"face": face.id},
        )
        logger.info("Enrolled face %s for person %s", face.id, person.id)
        return Enrollment(face, created=True)

    async def _add_face(
        self, person: Person, digest: str, content: bytes, actor: Principal
    ) -> FaceExample:
        others = await load_stored_images(
            self._images, person.id, await self._repository.list_faces(person.id)
        )
        example_id = await self._recognizer.add_example(person.id, content, others)
        face = FaceExample(
            id=uuid.uuid4().hex,
            person_id=person.id,
            image_sha256=digest,
            enrolled_at=self._clock.now(),
            example_id=example_id,
            enrolled_by=actor.label,
        )

        try:
            await asyncio.to_thread(self._images.save, person.id, digest, content)
            await self._repository.add_face(face)
        except BaseException:
            # Without the local link the example would be unknown to the
            # appliance; take it back before giving up.
            await asyncio.to_thread(self._images.remove, person.id, digest)
            await self._recognizer.delete_example(example_id, others)
            raise
        return face


async def load_stored_images(
    images: FaceImageStore, person_id: str, faces: Iterable[FaceExample]
) -> list[bytes]:
    """The stored images of ``faces``: what a recognizer that replaces a
    subject's registration must be sent along with any change."""
    digests = [face.image_sha256 for face in faces]
    return await asyncio.to_thread(images.load_many, person_id, digests)


def check_single_face(faces: Sequence[RecognizedFace], min_face_px: int) -> None:
    """Refuse an enrollment image unless it shows one face, large enough."""
    if not faces:
        raise NoFaceFound("the recognizer found no face in the image")
    if len(faces) > 1:
        raise SeveralFaces(
            f"the image shows {len(faces)} faces; an enrollment image must show "
            "exactly one",
            faces=len(faces),
        )

    box = faces[0].box
    width, height = box.x_max - box.x_min, box.y_max - box.y_min
    if min(width, height) < min_face_px:
        raise FaceTooSmall(
            f"the face is {width}x{height} pixels, under {min_face_px} on its "
            "shorter side",
            width=width,
            height=height,
            min_face_px=min_face_px,
        )
