"""User service: one entry point for people and their faces. Service layer.

Controllers and the CLI use it for people and their faces; it wires the
services that each do one part of it.

People are ``services.people``, face enrollment ``services.enrollment``,
erasure ``services.erasure``, reconciliation with the recognizer
``services.recognizer_drift`` and bulk import ``services.bulk_import``. This
module only builds them from one set of clients and passes calls through; the
one thing it adds is the faces lock those services share, so that enrollment,
removal, erasure and repair run one at a time (see ``services.enrollment``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path

from edge_agent.clients.recognition.base import Recognizer
from edge_agent.clients.storage.face_images import FaceImageStore
from edge_agent.clients.storage.people import PeopleRepository
from edge_agent.clock import Clock
from edge_agent.config import ImagingSettings
from edge_agent.imaging.pool import DecodePool
from edge_agent.models import FaceExample, Person, Principal
from edge_agent.services.audit import AuditService
from edge_agent.services.bulk_import import BulkImportService
from edge_agent.services.enrollment import (
    DEFAULT_MIN_FACE_PX,
    Enrollment,
    EnrollmentService,
)
from edge_agent.services.erasure import Erasure, ErasureService
from edge_agent.services.people import Bound, PeopleService, PersonChanges
from edge_agent.services.people_import import ImportReport, ImportRow, RowResult
from edge_agent.services.recognizer_drift import (
    RecognizerDriftService,
    ReconcileReport,
)


class UserService:
    def __init__(
        self,
        people: PeopleRepository,
        recognizer: Recognizer,
        images: FaceImageStore,
        decoder: DecodePool,
        audit: AuditService,
        clock: Clock,
        *,
        imaging: ImagingSettings | None = None,
        min_face_px: int = DEFAULT_MIN_FACE_PX,
    ) -> None:
        faces_lock = asyncio.Lock()
        self._people = PeopleService(people, audit, clock)
        self._enrollment = EnrollmentService(
            self._people,
            people,
            recognizer,
            images,
            decoder,
            audit,
            clock,
            faces_lock,
            imaging=imaging or ImagingSettings(),
            min_face_px=min_face_px,
        )
        self._erasure = ErasureService(
            self._people, people, recognizer, images, audit, clock, faces_lock
        )
        self._drift = RecognizerDriftService(
            people, recognizer, images, audit, faces_lock
        )
        self._import = BulkImportService(self._people, self._enrollment, audit)

    # --- people -------------------------------------------------------------

    async def create(
        self,
        employee_no: str,
        name: str,
        department: str | None,
        actor: Principal,
        *,
        valid_from: Bound | None = None,
        valid_until: Bound | None = None,
    ) -> Person:
        return await self._people.create(
            employee_no,
            name,
            department,
            actor,
            valid_from=valid_from,
            valid_until=valid_until,
        )

    async def list_people(self, *, include_erased: bool = False) -> list[Person]:
        return await self._people.list_people(include_erased=include_erased)

    async def get(self, reference: str) -> Person:
        return await self._people.get(reference)

    async def update(
        self, reference: str, changes: PersonChanges, actor: Principal
    ) -> Person:
        return await self._people.update(reference, changes, actor)

    async def deactivate(self, reference: str, actor: Principal) -> Person:
        return await self._people.deactivate(reference, actor)

    async def activate(self, reference: str, actor: Principal) -> Person:
        return await self._people.activate(reference, actor)

    async def erase(self, reference: str, actor: Principal) -> Erasure:
        return await self._erasure.erase(reference, actor)

    # --- faces --------------------------------------------------------------

    async def enroll(
        self, reference: str, image: bytes, actor: Principal
    ) -> Enrollment:
        return await self._enrollment.enroll(reference, image, actor)

    async def list_faces(self, reference: str) -> list[FaceExample]:
        return await self._enrollment.list_faces(reference)

    async def remove_face(
        self, reference: str, face_id: str, actor: Principal
    ) -> FaceExample:
        return await self._enrollment.remove_face(reference, face_id, actor)

    async def reconcile(self, repair: bool, actor: Principal) -> ReconcileReport:
        return await self._drift.reconcile(repair, actor)

    # --- bulk import --------------------------------------------------------

    async def import_people(
        self,
        rows: Sequence[ImportRow],
        photos: Path | None,
        actor: Principal,
        *,
        on_row: Callable[[RowResult], None] | None = None,
    ) -> ImportReport:
        return await self._import.import_people(rows, photos, actor, on_row=on_row)
