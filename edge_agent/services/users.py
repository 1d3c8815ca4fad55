"""User service: people who can be marked, and the face examples that identify them.

A person's subject at the recognizer is the person's id, which never changes,
so renaming a person or correcting an employee number needs no re-enrollment.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid

from edge_agent.clients.recognition.base import Recognizer
from edge_agent.clients.storage.face_images import FaceImageStore
from edge_agent.clients.storage.people import PeopleRepository
from edge_agent.clock import Clock
from edge_agent.errors import InvalidInput, NotFound
from edge_agent.imaging.pool import DecodePool
from edge_agent.models import FaceExample, Person, PersonStatus, Principal
from edge_agent.services.audit import AuditAction, AuditService

logger = logging.getLogger(__name__)


class UserService:
    def __init__(
        self,
        people: PeopleRepository,
        recognizer: Recognizer,
        images: FaceImageStore,
        decoder: DecodePool,
        audit: AuditService,
        clock: Clock,
    ) -> None:
        self._people = people
        self._recognizer = recognizer
        self._images = images
        self._decoder = decoder
        self._audit = audit
        self._clock = clock

    async def create(
        self,
        employee_no: str,
        name: str,
        department: str | None,
        actor: Principal,
    ) -> Person:
        employee_no, name = employee_no.strip(), name.strip()
        if not employee_no or not name:
            raise InvalidInput("a person needs an employee number and a name")

        person = Person(
            id=uuid.uuid4().hex,
            employee_no=employee_no,
            name=name,
            department=(department or "").strip() or None,
            status=PersonStatus.ACTIVE,
            created_at=self._clock.now(),
        )
        await self._people.add(person)
        await self._audit.record(
            actor,
            AuditAction.PERSON_CREATED,
            target=f"person:{person.id}",
            details={"employee_no": employee_no},
        )
        logger.info("Created person %s (employee %s)", person.id, employee_no)
        return person

    async def list_people(self) -> list[Person]:
        return await self._people.all()

    async def get(self, reference: str) -> Person:
        """Find a person by id or, failing that, by employee number."""
        person = await self._people.find(reference)
        if person is not None:
            return person
        try:
            return await self._people.get_by_employee_no(reference)
        except NotFound:
            raise NotFound(
                f"no person with id or employee number {reference!r}"
            ) from None

    async def find_by_subject(self, subject: str) -> Person | None:
        return await self._people.find(subject)

    async def enroll(
        self, reference: str, image: bytes, actor: Principal
    ) -> FaceExample:
        """Validate the image, add it to the recognizer, and link it to the person."""
        person = await self.get(reference)
        await self._decoder.decode(image)
        others = await asyncio.to_thread(self._images.load_all, person.id)

        image_id = await self._recognizer.add_example(person.id, image, others)
        face = FaceExample(
            id=image_id,
            person_id=person.id,
            image_sha256=hashlib.sha256(image).hexdigest(),
            enrolled_at=self._clock.now(),
        )
        try:
            await asyncio.to_thread(
                self._images.save, person.id, face.image_sha256, image
            )
            await self._people.add_face(face)
        except BaseException:
            # Without the local link the example would be an orphan subject
            # at the recognizer; take it back before giving up.
            await asyncio.to_thread(self._images.remove, person.id, face.image_sha256)
            await self._recognizer.delete_example(image_id, others)
            raise
        await self._audit.record(
            actor,
            AuditAction.FACE_ENROLLED,
            target=f"person:{person.id}",
            details={"face": image_id, "image_sha256": face.image_sha256},
        )
        logger.info("Enrolled face %s for person %s", image_id, person.id)
        return face

    async def list_faces(self, reference: str) -> list[FaceExample]:
        person = await self.get(reference)
        return await self._people.list_faces(person.id)
