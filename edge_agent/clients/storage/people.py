"""Storage client: people and the face examples that identify them.

An erased person is stored as ``inactive`` with ``erased_at`` set (migration
0005 says why) and read back with the status ``erased``.
"""

from __future__ import annotations

import logging
import sqlite3
from datetime import date, datetime

from edge_agent.clients.storage.database import Database
from edge_agent.clients.storage.rows import optional_time
from edge_agent.clients.storage.sync_records import person_erased
from edge_agent.clock import from_text, to_text
from edge_agent.errors import Conflict, NotFound
from edge_agent.models import FaceExample, Person, PersonStatus

logger = logging.getLogger(__name__)

_INSERT_PERSON = """
INSERT INTO people (id, employee_no, name, department, status, created_at,
                    valid_from, valid_until)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
"""
_UPDATE_PERSON = """
UPDATE people
SET employee_no = ?, name = ?, department = ?, status = ?, valid_from = ?,
    valid_until = ?
WHERE id = ? AND erased_at IS NULL
"""
_ERASE_PERSON = """
UPDATE people
SET employee_no = ?, name = ?, department = NULL, status = 'inactive',
    valid_from = NULL, valid_until = NULL, erased_at = ?
WHERE id = ?
"""
_SELECT_PERSON = "SELECT * FROM people"
_BY_ID = f"{_SELECT_PERSON} WHERE id = ?"
_BY_EMPLOYEE_NO = f"{_SELECT_PERSON} WHERE employee_no = ?"
_LIVING = f"{_SELECT_PERSON} WHERE erased_at IS NULL ORDER BY employee_no"
_EVERYONE = f"{_SELECT_PERSON} ORDER BY erased_at IS NOT NULL, employee_no"

_INSERT_FACE = """
INSERT INTO face_examples (id, person_id, image_sha256, enrolled_at, example_id,
                           enrolled_by)
VALUES (?, ?, ?, ?, ?, ?)
"""
_FACES_OF = """
SELECT * FROM face_examples WHERE person_id = ? ORDER BY enrolled_at, id
"""
_FACE = "SELECT * FROM face_examples WHERE id = ? AND person_id = ?"
_FACE_BY_IMAGE = """
SELECT * FROM face_examples WHERE person_id = ? AND image_sha256 = ? LIMIT 1
"""
_ALL_FACES = "SELECT * FROM face_examples ORDER BY person_id, enrolled_at, id"
_DELETE_FACE = "DELETE FROM face_examples WHERE id = ?"
_DELETE_FACES_OF = "DELETE FROM face_examples WHERE person_id = ?"
_SET_EXAMPLE_ID = "UPDATE face_examples SET example_id = ? WHERE id = ?"

# Folds the write-ahead log into the file and truncates it, so that older
# versions of changed pages do not linger in the log
# (https://sqlite.org/pragma.html#pragma_wal_checkpoint).
_CHECKPOINT = "PRAGMA wal_checkpoint(TRUNCATE)"


class PeopleRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, person: Person) -> None:
        row = (
            person.id,
            person.employee_no,
            person.name,
            person.department,
            _stored_status(person.status),
            to_text(person.created_at),
            _bound_text(person.valid_from),
            _bound_text(person.valid_until),
        )
        try:
            async with self._db.transaction() as conn:
                await conn.execute(_INSERT_PERSON, row)
        except sqlite3.IntegrityError as exc:
            raise _taken(person.employee_no) from exc

    async def update(self, person: Person) -> None:
        """Store the person's fields; an erased person is never changed."""
        row = (
            person.employee_no,
            person.name,
            person.department,
            _stored_status(person.status),
            _bound_text(person.valid_from),
            _bound_text(person.valid_until),
            person.id,
        )
        try:
            async with self._db.transaction() as conn:
                cursor = await conn.execute(_UPDATE_PERSON, row)
        except sqlite3.IntegrityError as exc:
            raise _taken(person.employee_no) from exc
        if cursor.rowcount != 1:
            raise NotFound(f"no person with id {person.id!r} to update")

    async def erase(self, tombstone: Person) -> int:
        """Replace the person's fields by ``tombstone``'s and drop their face
        links, in one transaction; return how many links went."""
        if tombstone.erased_at is None:
            raise ValueError("a tombstone needs its erasure time")
        row = (
            tombstone.employee_no,
            tombstone.name,
            to_text(tombstone.erased_at),
            tombstone.id,
        )
        async with self._db.transaction() as conn:
            deleted = await conn.execute(_DELETE_FACES_OF, (tombstone.id,))
            await conn.execute(_ERASE_PERSON, row)
            await person_erased(
                conn, tombstone.id, tombstone.employee_no, tombstone.erased_at
            )
        return deleted.rowcount

    async def purge_journal(self) -> bool:
        """Checkpoint and truncate the write-ahead log; False when another
        connection's open read kept it from completing."""
        row = await self._db.fetch_one(_CHECKPOINT)
        done = row is not None and row[0] == 0
        if not done:
            logger.warning("Write-ahead log not truncated: a reader holds it")
        return done

    async def get(self, person_id: str) -> Person:
        person = await self.find(person_id)
        if person is None:
            raise NotFound(f"no person with id {person_id!r}")
        return person

    async def find(self, person_id: str) -> Person | None:
        row = await self._db.fetch_one(_BY_ID, (person_id,))
        return None if row is None else _person(row)

    async def get_by_employee_no(self, employee_no: str) -> Person:
        row = await self._db.fetch_one(_BY_EMPLOYEE_NO, (employee_no,))
        if row is None:
            raise NotFound(f"no person with employee number {employee_no!r}")
        return _person(row)

    async def all(self, *, include_erased: bool = False) -> list[Person]:
        rows = await self._db.fetch_all(_EVERYONE if include_erased else _LIVING)
        return [_person(row) for row in rows]

    async def add_face(self, face: FaceExample) -> None:
        row = (
            face.id,
            face.person_id,
            face.image_sha256,
            to_text(face.enrolled_at),
            face.example_id,
            face.enrolled_by,
        )
        async with self._db.transaction() as conn:
            await conn.execute(_INSERT_FACE, row)

    async def list_faces(self, person_id: str) -> list[FaceExample]:
        rows = await self._db.fetch_all(_FACES_OF, (person_id,))
        return [_face(row) for row in rows]

    async def all_faces(self) -> list[FaceExample]:
        rows = await self._db.fetch_all(_ALL_FACES)
        return [_face(row) for row in rows]

    async def get_face(self, person_id: str, face_id: str) -> FaceExample:
        row = await self._db.fetch_one(_FACE, (face_id, person_id))
        if row is None:
            raise NotFound(f"person {person_id} has no face {face_id!r}")
        return _face(row)

    async def find_face_by_image(
        self, person_id: str, image_sha256: str
    ) -> FaceExample | None:
        row = await self._db.fetch_one(_FACE_BY_IMAGE, (person_id, image_sha256))
        return None if row is None else _face(row)

    async def remove_face(self, face_id: str) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(_DELETE_FACE, (face_id,))

    async def set_example_id(self, face_id: str, example_id: str) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(_SET_EXAMPLE_ID, (example_id, face_id))


def _taken(employee_no: str) -> Conflict:
    return Conflict(f"employee number {employee_no!r} is already taken")


def _stored_status(status: PersonStatus) -> str:
    return PersonStatus.INACTIVE.value if status is PersonStatus.ERASED else status


def _bound_text(bound: date | datetime | None) -> str | None:
    if bound is None:
        return None
    # datetime is a subclass of date, so it is tested first.
    if isinstance(bound, datetime):
        return to_text(bound)
    return bound.isoformat()


def _bound(text: str | None) -> date | datetime | None:
    if text is None:
        return None
    # 'YYYY-MM-DD' is a date; anything longer is an instant.
    return date.fromisoformat(text) if len(text) == 10 else from_text(text)


def _person(row: sqlite3.Row) -> Person:
    erased_at = row["erased_at"]
    return Person(
        id=row["id"],
        employee_no=row["employee_no"],
        name=row["name"],
        department=row["department"],
        status=PersonStatus.ERASED if erased_at else PersonStatus(row["status"]),
        created_at=from_text(row["created_at"]),
        valid_from=_bound(row["valid_from"]),
        valid_until=_bound(row["valid_until"]),
        erased_at=optional_time(erased_at),
    )


def _face(row: sqlite3.Row) -> FaceExample:
    return FaceExample(
        id=row["id"],
        person_id=row["person_id"],
        image_sha256=row["image_sha256"],
        enrolled_at=from_text(row["enrolled_at"]),
        example_id=row["example_id"],
        enrolled_by=row["enrolled_by"],
    )
