"""Erasure service: the right to erasure, a person's face data and fields gone.

The recognizer's examples of the person go first, so that an unreachable
recognizer stops the erasure before anything else changed and the caller can
simply try again; then the stored images; then, in one transaction, the face
links, and the person's personal fields, which are replaced by a tombstone
(name ``erased``, employee number ``erased:<id>``, no department or validity,
status ``erased``). Attendance marks and decisions are kept, since payroll and
labour law need them; they name the person only by id, and that id then leads
to the tombstone. Finally the write-ahead log is checkpointed and truncated,
so that no older version of a page still holds the person's fields (deleted
content is zeroed in the file itself, see ``clients.storage.database``).

An erasure changes faces, so it holds the faces lock the enrollment service
shares (see ``services.enrollment``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from dataclasses import dataclass

from edge_agent.clients.recognition.base import Recognizer
from edge_agent.clients.storage.face_images import FaceImageStore
from edge_agent.clients.storage.people import PeopleRepository
from edge_agent.clock import Clock
from edge_agent.models import Person, PersonStatus, Principal
from edge_agent.services.audit import AuditAction, AuditService
from edge_agent.services.people import TOMBSTONE_PREFIX, PeopleService, person_target

logger = logging.getLogger(__name__)

ERASED_NAME = "erased"


@dataclass(frozen=True, slots=True)
class Erasure:
    person: Person
    face_links_removed: int
    recognizer_examples_removed: int


class ErasureService:
    def __init__(
        self,
        people: PeopleService,
        repository: PeopleRepository,
        recognizer: Recognizer,
        images: FaceImageStore,
        audit: AuditService,
        clock: Clock,
        faces_lock: asyncio.Lock,
    ) -> None:
        self._people = people
        self._repository = repository
        self._recognizer = recognizer
        self._images = images
        self._audit = audit
        self._clock = clock
        self._faces_lock = faces_lock

    async def erase(self, reference: str, actor: Principal) -> Erasure:
        """Erase the person's face data and personal fields (see the module
        docstring); erasing an erased person again repeats the clean-up."""
        person = await self._people.get(reference)

        async with self._faces_lock:
            examples = await self._recognizer.delete_subject_examples(person.id)
            await asyncio.to_thread(self._images.erase, person.id)
            tombstone = self._tombstone(person)
            links = await self._repository.erase(tombstone)
            await self._repository.purge_journal()

        details = {"face_links_removed": links, "recognizer_examples_removed": examples}
        await self._audit.record(
            actor,
            AuditAction.PERSON_ERASED,
            target=person_target(person),
            details=details,
        )
        logger.info(
            "Erased person %s: %d face links, %d recognizer examples",
            person.id,
            links,
            examples,
        )
        return Erasure(tombstone, links, examples)

    def _tombstone(self, person: Person) -> Person:
        return dataclasses.replace(
            person,
            employee_no=f"{TOMBSTONE_PREFIX}{person.id}",
            name=ERASED_NAME,
            department=None,
            status=PersonStatus.ERASED,
            valid_from=None,
            valid_until=None,
            erased_at=person.erased_at or self._clock.now(),
        )
