"""People service: the people who can be marked, and the rules their fields keep.

Personal data stays out of the audit log and the logs: entries and lines name
a person by id, and a change by the names of the fields it touched, never by
their values. The audit chain cannot be edited, so anything personal written
into it would outlive an erasure.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final

from edge_agent.clients.storage.people import PeopleRepository
from edge_agent.clock import Clock, to_text
from edge_agent.errors import Conflict, InvalidInput, NotFound
from edge_agent.models import Person, PersonStatus, Principal
from edge_agent.services.audit import AuditAction, AuditService

logger = logging.getLogger(__name__)

MAX_EMPLOYEE_NO_LENGTH = 64
MAX_NAME_LENGTH = 200
MAX_DEPARTMENT_LENGTH = 200

# Erasure gives the tombstone the employee number ``erased:<id>``; no living
# person may take one, so a tombstone's number never collides.
TOMBSTONE_PREFIX = "erased:"

Bound = date | datetime


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


def living(person: Person) -> Person:
    """The person, unless erased: an erased person is a Conflict for any change."""
    if person.status is PersonStatus.ERASED:
        raise Conflict(f"person {person.id} was erased")
    return person


async def find_by_reference(people: PeopleRepository, reference: str) -> Person:
    """A person by id or, failing that, by employee number; NotFound if neither."""
    found = await people.find(reference)
    if found is None:
        found = await people.get_by_employee_no(reference)
    return found


def person_target(person: Person) -> str:
    """The audit target naming the person, by id only."""
    return f"person:{person.id}"


class PeopleService:
    def __init__(
        self, people: PeopleRepository, audit: AuditService, clock: Clock
    ) -> None:
        self._people = people
        self._audit = audit
        self._clock = clock

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
                actor, AuditAction.PERSON_CREATED, target=person_target(person)
            )
        logger.info("Created person %s", person.id)
        return person

    async def list_people(self, *, include_erased: bool = False) -> list[Person]:
        return await self._people.all(include_erased=include_erased)

    async def get(self, reference: str) -> Person:
        """Find a person by id or, failing that, by employee number."""
        try:
            return await find_by_reference(self._people, reference)
        except NotFound:
            raise NotFound(
                f"no person with id or employee number {reference!r}"
            ) from None

    async def find_living_employee(self, employee_no: str) -> Person | None:
        """The person with this employee number, or None; an erased one is a
        Conflict."""
        try:
            person = await self._people.get_by_employee_no(employee_no.strip())
        except NotFound:
            return None
        return living(person)

    async def update(
        self, reference: str, changes: PersonChanges, actor: Principal
    ) -> Person:
        """Apply ``changes``; a taken employee number is a Conflict."""
        person = living(await self.get(reference))
        updated, _ = await self.save_changes(person, changes, actor)
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

    async def save_changes(
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
                target=person_target(person),
                details={"fields": changed},
            )
        logger.info("Updated person %s: %s", person.id, ", ".join(changed))
        return updated, changed

    async def _set_status(
        self, reference: str, status: PersonStatus, action: str, actor: Principal
    ) -> Person:
        person = living(await self.get(reference))
        if person.status is status:
            return person

        updated = dataclasses.replace(person, status=status)
        async with self._audit.atomic():
            await self._people.update(updated)
            await self._audit.record(actor, action, target=person_target(person))
        logger.info("Person %s is now %s", person.id, status.value)
        return updated


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
    if person.employee_no.startswith(TOMBSTONE_PREFIX):
        raise InvalidInput(f"employee numbers starting {TOMBSTONE_PREFIX!r} are kept")
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
