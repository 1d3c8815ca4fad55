"""Bulk import service: apply a people import file, row by row. Service layer.

Each row creates or updates a person and enrolls the row's photos.

The file format and the report are ``services.people_import``; the people and
faces themselves change through the people and enrollment services, so an
imported person passes the same checks and audit as one added by hand.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from edge_agent.errors import EdgeError, InvalidInput
from edge_agent.models import Person, Principal
from edge_agent.services.audit import AuditAction, AuditService
from edge_agent.services.enrollment import EnrollmentService
from edge_agent.services.people import (
    KEEP,
    PeopleService,
    PersonChanges,
    parse_validity,
)
from edge_agent.services.people_import import (
    PHOTO_SEPARATOR,
    ImportOutcome,
    ImportReport,
    ImportRow,
    RowResult,
)

logger = logging.getLogger(__name__)


class BulkImportService:
    def __init__(
        self,
        people: PeopleService,
        enrollment: EnrollmentService,
        audit: AuditService,
    ) -> None:
        self._people = people
        self._enrollment = enrollment
        self._audit = audit

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
        existing = await self._people.find_living_employee(
            row.values.get("employee_no", "")
        )

        images = await _read_photos(row, photos)
        new_images = await self._unlinked_images(existing, images)
        contents = {
            digest: await self._enrollment.checked_face(image)
            for digest, image in new_images
        }

        person, outcome = await self._upsert(existing, changes, actor)
        for digest, content in contents.items():
            await self._enrollment.link_face(person, digest, content, actor)
        if outcome is ImportOutcome.UNCHANGED and contents:
            outcome = ImportOutcome.UPDATED
        return outcome, person

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
            if await self._enrollment.find_enrolled(person.id, digest) is None
        ]

    async def _upsert(
        self, existing: Person | None, changes: PersonChanges, actor: Principal
    ) -> tuple[Person, ImportOutcome]:
        if existing is not None:
            person, changed = await self._people.save_changes(existing, changes, actor)
            outcome = ImportOutcome.UPDATED if changed else ImportOutcome.UNCHANGED
            return person, outcome

        fields = changes.given()
        person = await self._people.create(
            fields["employee_no"],
            fields["name"],
            fields.get("department"),
            actor,
            valid_from=fields.get("valid_from"),
            valid_until=fields.get("valid_until"),
        )
        return person, ImportOutcome.CREATED


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
