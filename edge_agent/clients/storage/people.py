"""Storage client: people and the face examples that identify them."""

from __future__ import annotations

import sqlite3

from edge_agent.clients.storage.database import Database
from edge_agent.clock import from_text, to_text
from edge_agent.errors import Conflict, NotFound
from edge_agent.models import FaceExample, Person, PersonStatus

_INSERT_PERSON = """
INSERT INTO people (id, employee_no, name, department, status, created_at)
VALUES (?, ?, ?, ?, ?, ?)
"""
_SELECT_PERSON = "SELECT * FROM people"
_INSERT_FACE = """
INSERT INTO face_examples (id, person_id, image_sha256, enrolled_at)
VALUES (?, ?, ?, ?)
"""


class PeopleRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, person: Person) -> None:
        row = (
            person.id,
            person.employee_no,
            person.name,
            person.department,
            person.status.value,
            to_text(person.created_at),
        )
        try:
            async with self._db.transaction() as conn:
                await conn.execute(_INSERT_PERSON, row)
        except sqlite3.IntegrityError as exc:
            raise Conflict(
                f"employee number {person.employee_no!r} is already taken"
            ) from exc

    async def get(self, person_id: str) -> Person:
        row = await self._db.fetch_one(f"{_SELECT_PERSON} WHERE id = ?", (person_id,))
        if row is None:
            raise NotFound(f"no person with id {person_id!r}")
        return _person(row)

    async def find(self, person_id: str) -> Person | None:
        row = await self._db.fetch_one(f"{_SELECT_PERSON} WHERE id = ?", (person_id,))
        return None if row is None else _person(row)

    async def get_by_employee_no(self, employee_no: str) -> Person:
        sql = f"{_SELECT_PERSON} WHERE employee_no = ?"
        row = await self._db.fetch_one(sql, (employee_no,))
        if row is None:
            raise NotFound(f"no person with employee number {employee_no!r}")
        return _person(row)

    async def all(self) -> list[Person]:
        rows = await self._db.fetch_all(f"{_SELECT_PERSON} ORDER BY employee_no")
        return [_person(row) for row in rows]

    async def add_face(self, face: FaceExample) -> None:
        row = (face.id, face.person_id, face.image_sha256, to_text(face.enrolled_at))
        async with self._db.transaction() as conn:
            await conn.execute(_INSERT_FACE, row)

    async def list_faces(self, person_id: str) -> list[FaceExample]:
        sql = "SELECT * FROM face_examples WHERE person_id = ? ORDER BY enrolled_at"
        rows = await self._db.fetch_all(sql, (person_id,))
        return [_face(row) for row in rows]


def _person(row: sqlite3.Row) -> Person:
    return Person(
        id=row["id"],
        employee_no=row["employee_no"],
        name=row["name"],
        department=row["department"],
        status=PersonStatus(row["status"]),
        created_at=from_text(row["created_at"]),
    )


def _face(row: sqlite3.Row) -> FaceExample:
    return FaceExample(
        id=row["id"],
        person_id=row["person_id"],
        image_sha256=row["image_sha256"],
        enrolled_at=from_text(row["enrolled_at"]),
    )
