"""User service: people who can be marked, and the face examples that identify them.

A person's subject at the recognizer is the person's id, which never changes,
so renaming a person or correcting an employee number needs no re-enrollment.

Personal data stays out of the audit log and the logs: entries and lines name
a person by id, and a change by the names of the fields it touched, never by
their values. The audit chain cannot be edited, so anything personal written
into it would outlive an erasure.

Enrollment: each image passes the same inspection, normalization and quality
gates as a camera frame; the recognizer must then find exactly one face in
it, at least ``min_face_px`` pixels on its shorter side (measured on the
normalized image, whose longer edge is at most ``imaging.max_edge``). The
normalized image is what the recognizer gets and what the appliance keeps.
An image already linked to the person (same SHA-256 as uploaded) is not
enrolled twice.

Erasure (the right to erasure): the recognizer's examples of the person go
first, so that an unreachable recognizer stops the erasure before anything
else changed and the caller can simply try again; then the stored images;
then, in one transaction, the face links, and the person's personal fields,
which are replaced by a tombstone (name ``erased``, employee number
``erased:<id>``, no department or validity, status ``erased``). Attendance
marks and decisions are kept, since payroll and labour law need them; they
name the person only by id, and that id then leads to the tombstone. Finally
the write-ahead log is checkpointed and truncated, so that no older version of
a page still holds the person's fields (deleted content is zeroed in the file
itself, see ``clients.storage.database``).

Face changes (enroll, remove, erase, repair) run one at a time in this
process: a recognizer that keeps one registration per subject is sent all of a
subject's images on each change, and two changes at once would each send a
set missing the other's image. Another process (the CLI beside the daemon)
is not held back by this lock; running ``users sync-recognizer`` afterwards
finds what such a race left behind.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import hashlib
import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Final

from edge_agent.clients.recognition.base import Recognizer
from edge_agent.clients.storage.face_images import FaceImageStore
from edge_agent.clients.storage.people import PeopleRepository
from edge_agent.clock import Clock, to_text
from edge_agent.config import ImagingSettings
from edge_agent.errors import (
    Conflict,
    EdgeError,
    InvalidInput,
    NoFaceFound,
    NotFound,
    Refused,
)
from edge_agent.imaging.pool import DecodePool
from edge_agent.models import (
    FaceExample,
    Person,
    PersonStatus,
    Principal,
    RecognizedFace,
)
from edge_agent.services.audit import AuditAction, AuditService
from edge_agent.services.people_import import (
    PHOTO_SEPARATOR,
    ImportOutcome,
    ImportReport,
    ImportRow,
    RowResult,
)
from edge_agent.services.recognizer_drift import (
    MissingExample,
    ReconcileReport,
    RepairProgress,
    find_drift,
)

logger = logging.getLogger(__name__)

DEFAULT_MIN_FACE_PX = 60
MAX_EMPLOYEE_NO_LENGTH = 64
MAX_NAME_LENGTH = 200
MAX_DEPARTMENT_LENGTH = 200

ERASED_NAME = "erased"
_TOMBSTONE_PREFIX = "erased:"

Bound = date | datetime


class SeveralFaces(Refused):
    slug = "several-faces"
    title = "Several faces found"


class FaceTooSmall(Refused):
    slug = "face-too-small"
    title = "Face too small"


class _Keep(enum.Enum):
    KEEP = "keep"


KEEP: Final = _Keep.KEEP


@dataclass(frozen=True, slots=True)
class PersonChanges:
    """What to change about a person; a field left at ``KEEP`` keeps its value,
    ``None`` clears an optional one."""

    employee_no: str | _Keep = KEEP
    name: str | _Keep = KEEP
    department: str | _Keep | None = KEEP
    valid_from: Bound | _Keep | None = KEEP
    valid_until: Bound | _Keep | None = KEEP

    def given(self) -> dict[str, Any]:
        """The fields to change, by name."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {name: value for name, value in values.items() if value is not KEEP}


@dataclass(frozen=True, slots=True)
class Enrollment:
    """The face link an enrollment made, or found: ``created`` is False when
    the same image was already enrolled for the person."""

    face: FaceExample
    created: bool


@dataclass(frozen=True, slots=True)
class Erasure:
    person: Person
    face_links_removed: int
    recognizer_examples_removed: int


def parse_validity(text: str) -> Bound:
    """Read a validity bound: ``YYYY-MM-DD`` (a whole site-local day), or an
    RFC 3339 time with a UTC offset or ``Z`` (an instant, returned in UTC)."""
    value = text.strip()
    if len(value) == 10:
        return date.fromisoformat(value)

    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("a validity time needs a UTC offset or Z")
    return moment.astimezone(UTC)


def format_validity(bound: Bound | None) -> str | None:
    """The text form :func:`parse_validity` reads back."""
    if bound is None:
        return None
    if isinstance(bound, datetime):
        return to_text(bound)
    return bound.isoformat()


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
        self._people = people
        self._recognizer = recognizer
        self._images = images
        self._decoder = decoder
        self._audit = audit
        self._clock = clock
        self._imaging = imaging or ImagingSettings()
        self._min_face_px = min_face_px
        self._faces_lock = asyncio.Lock()

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
        person = Person(
            id=uuid.uuid4().hex,
            employee_no=employee_no.strip(),
            name=name.strip(),
            department=_cleaned(department),
            status=PersonStatus.ACTIVE,
            created_at=self._clock.now(),
            valid_from=valid_from,
            valid_until=valid_until,
        )
        _check_person(person)

        async with self._audit.atomic():
            await self._people.add(person)
            await self._audit.record(
                actor, AuditAction.PERSON_CREATED, target=_target(person)
            )
        logger.info("Created person %s", person.id)
        return person

    async def list_people(self, *, include_erased: bool = False) -> list[Person]:
        return await self._people.all(include_erased=include_erased)

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

    async def update(
        self, reference: str, changes: PersonChanges, actor: Principal
    ) -> Person:
        """Apply ``changes``; a taken employee number is a Conflict."""
        person = _living(await self.get(reference))
        updated, _ = await self._save_changes(person, changes, actor)
        return updated

    async def deactivate(self, reference: str, actor: Principal) -> Person:
        """Stop the person being marked; their faces stay enrolled."""
        return await self._set_status(
            reference, PersonStatus.INACTIVE, AuditAction.PERSON_DEACTIVATED, actor
        )

    async def activate(self, reference: str, actor: Principal) -> Person:
        return await self._set_status(
            reference, PersonStatus.ACTIVE, AuditAction.PERSON_ACTIVATED, actor
        )

    async def erase(self, reference: str, actor: Principal) -> Erasure:
        """Erase the person's face data and personal fields (see the module
        docstring); erasing an erased person again repeats the clean-up."""
        person = await self.get(reference)

        async with self._faces_lock:
            examples = await self._recognizer.delete_subject_examples(person.id)
            await asyncio.to_thread(self._images.erase, person.id)
            tombstone = self._tombstone(person)
            links = await self._people.erase(tombstone)
            await self._people.purge_journal()

        details = {"face_links_removed": links, "recognizer_examples_removed": examples}
        await self._audit.record(
            actor, AuditAction.PERSON_ERASED, target=_target(person), details=details
        )
        logger.info(
            "Erased person %s: %d face links, %d recognizer examples",
            person.id,
            links,
            examples,
        )
        return Erasure(tombstone, links, examples)

    async def _set_status(
        self, reference: str, status: PersonStatus, action: str, actor: Principal
    ) -> Person:
        person = _living(await self.get(reference))
        if person.status is status:
            return person

        updated = dataclasses.replace(person, status=status)
        async with self._audit.atomic():
            await self._people.update(updated)
            await self._audit.record(actor, action, target=_target(person))
        logger.info("Person %s is now %s", person.id, status.value)
        return updated

    async def _save_changes(
        self, person: Person, changes: PersonChanges, actor: Principal
    ) -> tuple[Person, list[str]]:
        """Store what ``changes`` changes; return the person and the names of
        the fields that changed (none: nothing is written or audited)."""
        updated, changed = _changed(person, changes)
        if not changed:
            return person, []

        _check_person(updated)
        async with self._audit.atomic():
            await self._people.update(updated)
            await self._audit.record(
                actor,
                AuditAction.PERSON_UPDATED,
                target=_target(person),
                details={"fields": changed},
            )
        logger.info("Updated person %s: %s", person.id, ", ".join(changed))
        return updated, changed

    def _tombstone(self, person: Person) -> Person:
        return dataclasses.replace(
            person,
            employee_no=f"{_TOMBSTONE_PREFIX}{person.id}",
            name=ERASED_NAME,
            department=None,
            status=PersonStatus.ERASED,
            valid_from=None,
            valid_until=None,
            erased_at=person.erased_at or self._clock.now(),
        )

    # --- faces --------------------------------------------------------------

    async def enroll(
        self, reference: str, image: bytes, actor: Principal
    ) -> Enrollment:
        """Validate the image, add it to the recognizer, and link it to the person."""
        person = _living(await self.get(reference))
        digest = hashlib.sha256(image).hexdigest()
        known = await self._people.find_face_by_image(person.id, digest)
        if known is not None:
            return Enrollment(known, created=False)

        content = await self._checked_face(image)
        return await self._link_face(person, digest, content, actor)

    async def list_faces(self, reference: str) -> list[FaceExample]:
        person = await self.get(reference)
        return await self._people.list_faces(person.id)

    async def remove_face(
        self, reference: str, face_id: str, actor: Principal
    ) -> FaceExample:
        """Remove one face: from the recognizer first, then the link and image."""
        person = await self.get(reference)
        face = await self._people.get_face(person.id, face_id)

        async with self._faces_lock:
            faces = await self._people.list_faces(person.id)
            others = [f for f in faces if f.id != face.id]
            remaining = await self._stored_images(person.id, others)
            await self._recognizer.delete_example(face.example_id, remaining)
            await self._people.remove_face(face.id)
            if face.image_sha256 not in {f.image_sha256 for f in others}:
                await asyncio.to_thread(
                    self._images.remove, person.id, face.image_sha256
                )

        await self._audit.record(
            actor,
            AuditAction.FACE_REMOVED,
            target=_target(person),
            details={"face": face.id},
        )
        logger.info("Removed face %s of person %s", face.id, person.id)
        return face

    async def _checked_face(self, image: bytes) -> bytes:
        """The normalized image, once it shows exactly one face large enough."""
        prepared = await self._decoder.prepare(image, self._imaging)
        faces = await self._recognizer.recognize(prepared.content)
        check_single_face(faces, self._min_face_px)
        return prepared.content

    async def _link_face(
        self, person: Person, digest: str, content: bytes, actor: Principal
    ) -> Enrollment:
        async with self._faces_lock:
            # Checked again under the lock: the same image may have been
            # enrolled while this one was being validated.
            known = await self._people.find_face_by_image(person.id, digest)
            if known is not None:
                return Enrollment(known, created=False)
            face = await self._add_face(person, digest, content, actor)

        await self._audit.record(
            actor,
            AuditAction.FACE_ENROLLED,
            target=_target(person),
            details={"face": face.id},
        )
        logger.info("Enrolled face %s for person %s", face.id, person.id)
        return Enrollment(face, created=True)

    async def _add_face(
        self, person: Person, digest: str, content: bytes, actor: Principal
    ) -> FaceExample:
        others = await self._stored_images(
            person.id, await self._people.list_faces(person.id)
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
            await self._people.add_face(face)
        except BaseException:
            # Without the local link the example would be unknown to the
            # appliance; take it back before giving up.
            await asyncio.to_thread(self._images.remove, person.id, digest)
            await self._recognizer.delete_example(example_id, others)
            raise
        return face

    async def _stored_images(
        self, person_id: str, faces: Iterable[FaceExample]
    ) -> list[bytes]:
        digests = [face.image_sha256 for face in faces]
        return await asyncio.to_thread(self._images.load_many, person_id, digests)

    # --- reconciliation -----------------------------------------------------

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
        people = await self._people.all(include_erased=True)
        faces = await self._people.all_faces()
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
            linked = await self._people.list_faces(example.subject)
            remaining = await self._stored_images(example.subject, linked)
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
        faces = await self._people.list_faces(item.person_id)
        face = next((f for f in faces if f.id == item.face_id), None)
        if face is None:
            raise NotFound("the face link is gone")
        image = await asyncio.to_thread(
            self._images.load, item.person_id, face.image_sha256
        )
        if image is None:
            raise NotFound("its stored image is gone; enroll the person again")

        others = await self._stored_images(
            item.person_id, [f for f in faces if f.id != face.id]
        )
        example_id = await self._recognizer.add_example(item.person_id, image, others)
        await self._people.set_example_id(face.id, example_id)
        logger.info("Enrolled face %s of person %s again", face.id, item.person_id)

    # --- bulk import --------------------------------------------------------

    async def import_people(
        self,
        rows: Sequence[ImportRow],
        photos: Path | None,
        actor: Principal,
        *,
        on_row: Callable[[RowResult], None] | None = None,
    ) -> ImportReport:
        """Create or update a person per row and enroll the row's photos
        (file names in ``photos``). A row is checked whole (fields, photos,
        faces) before it changes anything, so a failed row changes nothing.
        Re-running the same rows changes nothing: people whose fields match
        are unchanged, and photos already linked to the person are skipped."""
        report = ImportReport()
        for row in rows:
            result = await self._import_row(row, photos, actor)
            report.rows.append(result)
            if on_row is not None:
                on_row(result)

        await self._audit.record(
            actor,
            AuditAction.PEOPLE_IMPORTED,
            details={"rows": len(report.rows), **report.counts},
        )
        logger.info("Imported %d rows: %s", len(report.rows), report.counts)
        return report

    async def _import_row(
        self, row: ImportRow, photos: Path | None, actor: Principal
    ) -> RowResult:
        employee_no = row.values.get("employee_no", "")
        try:
            outcome, person = await self._apply_row(row, photos, actor)
        except EdgeError as exc:
            # Unavailable too: the row fails with the reason and the import
            # goes on, so the report covers every row and a re-run redoes
            # only what failed.
            return RowResult(row.line, employee_no, ImportOutcome.FAILED, exc.detail)
        return RowResult(row.line, employee_no, outcome, person_id=person.id)

    async def _apply_row(
        self, row: ImportRow, photos: Path | None, actor: Principal
    ) -> tuple[ImportOutcome, Person]:
        if row.problem is not None:
            raise InvalidInput(row.problem)
        changes = _row_changes(row)
        existing = await self._find_employee(row.values.get("employee_no", ""))

        images = await _read_photos(row, photos)
        new_images = await self._unlinked_images(existing, images)
        contents = {digest: await self._checked_face(i) for digest, i in new_images}

        person, outcome = await self._upsert(existing, changes, actor)
        for digest, content in contents.items():
            await self._link_face(person, digest, content, actor)
        if outcome is ImportOutcome.UNCHANGED and contents:
            outcome = ImportOutcome.UPDATED
        return outcome, person

    async def _find_employee(self, employee_no: str) -> Person | None:
        try:
            person = await self._people.get_by_employee_no(employee_no.strip())
        except NotFound:
            return None
        return _living(person)

    async def _unlinked_images(
        self, person: Person | None, images: Sequence[bytes]
    ) -> list[tuple[str, bytes]]:
        """The images not yet linked to the person, once each, by digest."""
        found: dict[str, bytes] = {}
        for image in images:
            found.setdefault(hashlib.sha256(image).hexdigest(), image)
        if person is None:
            return list(found.items())

        return [
            (digest, image)
            for digest, image in found.items()
            if await self._people.find_face_by_image(person.id, digest) is None
        ]

    async def _upsert(
        self, existing: Person | None, changes: PersonChanges, actor: Principal
    ) -> tuple[Person, ImportOutcome]:
        if existing is not None:
            person, changed = await self._save_changes(existing, changes, actor)
            outcome = ImportOutcome.UPDATED if changed else ImportOutcome.UNCHANGED
            return person, outcome

        fields = changes.given()
        person = await self.create(
            fields["employee_no"],
            fields["name"],
            fields.get("department"),
            actor,
            valid_from=fields.get("valid_from"),
            valid_until=fields.get("valid_until"),
        )
        return person, ImportOutcome.CREATED


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


def _living(person: Person) -> Person:
    if person.status is PersonStatus.ERASED:
        raise Conflict(f"person {person.id} was erased")
    return person


def _target(person: Person) -> str:
    return f"person:{person.id}"


def _cleaned(text: str | None) -> str | None:
    return (text or "").strip() or None


def _changed(person: Person, changes: PersonChanges) -> tuple[Person, list[str]]:
    """The person with ``changes`` applied, and the names of changed fields."""
    wanted = changes.given()
    for name in ("employee_no", "name"):
        if name in wanted:
            wanted[name] = wanted[name].strip()
    if "department" in wanted:
        wanted["department"] = _cleaned(wanted["department"])

    changed = {k: v for k, v in wanted.items() if getattr(person, k) != v}
    return dataclasses.replace(person, **changed), sorted(changed)


def _check_person(person: Person) -> None:
    """Refuse fields no person may have (the API checks lengths too)."""
    if not person.employee_no or not person.name:
        raise InvalidInput("a person needs an employee number and a name")
    if person.employee_no.startswith(_TOMBSTONE_PREFIX):
        raise InvalidInput(f"employee numbers starting {_TOMBSTONE_PREFIX!r} are kept")
    if len(person.employee_no) > MAX_EMPLOYEE_NO_LENGTH:
        raise InvalidInput(f"an employee number has at most {MAX_EMPLOYEE_NO_LENGTH}")
    if len(person.name) > MAX_NAME_LENGTH:
        raise InvalidInput(f"a name has at most {MAX_NAME_LENGTH} characters")
    if len(person.department or "") > MAX_DEPARTMENT_LENGTH:
        raise InvalidInput(f"a department has at most {MAX_DEPARTMENT_LENGTH}")
    _check_window(person.valid_from, person.valid_until)


def _check_window(start: Bound | None, end: Bound | None) -> None:
    if start is None or end is None:
        return
    if isinstance(start, datetime) and isinstance(end, datetime):
        empty = end < start
    else:
        # A date against an instant: compared by day, the instant's in UTC.
        empty = _day(end) < _day(start)
    if empty:
        raise InvalidInput("valid_until is before valid_from")


def _day(bound: Bound) -> date:
    return bound.astimezone(UTC).date() if isinstance(bound, datetime) else bound


def _row_changes(row: ImportRow) -> PersonChanges:
    """The person fields of an import row; a column the file lacks keeps the
    person's value, an empty cell clears it."""
    values = row.values
    try:
        bounds = {
            name: parse_validity(values[name]) if values[name] else None
            for name in ("valid_from", "valid_until")
            if name in values
        }
    except ValueError as exc:
        raise InvalidInput(f"a validity bound is not a date or time: {exc}") from exc

    return PersonChanges(
        employee_no=values.get("employee_no", ""),
        name=values.get("name", ""),
        department=values["department"] or None if "department" in values else KEEP,
        valid_from=bounds.get("valid_from") if "valid_from" in bounds else KEEP,
        valid_until=bounds.get("valid_until") if "valid_until" in bounds else KEEP,
    )


async def _read_photos(row: ImportRow, folder: Path | None) -> list[bytes]:
    cell = row.values.get("photo", "")
    names = [name.strip() for name in cell.split(PHOTO_SEPARATOR) if name.strip()]
    if not names:
        return []
    if folder is None:
        raise InvalidInput("the row names photos but no photo folder was given")
    return [await _read_photo(folder, name) for name in names]


async def _read_photo(folder: Path, name: str) -> bytes:
    # Only a plain file name: a row must not reach outside the photo folder.
    if Path(name).name != name or name in (".", ".."):
        raise InvalidInput(f"photo {name!r} is not a plain file name")
    try:
        return await asyncio.to_thread((folder / name).read_bytes)
    except FileNotFoundError:
        raise InvalidInput(f"photo {name!r} not found") from None
    except OSError as exc:
        raise InvalidInput(f"photo {name!r} cannot be read: {exc.strerror}") from exc
