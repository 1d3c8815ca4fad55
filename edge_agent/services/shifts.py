"""Shift service: named schedules and who works which, audited. Service layer.

A shift is never edited once created, so that the reports of past days keep
what they said; a changed schedule is a new shift, assigned from a date on.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, time, timedelta
from zoneinfo import ZoneInfo

from edge_agent.clients.storage.people import PeopleRepository
from edge_agent.clients.storage.shifts import ShiftRepository
from edge_agent.clock import Clock
from edge_agent.errors import InvalidInput
from edge_agent.models import Principal, Shift, ShiftAssignment
from edge_agent.services.audit import AuditAction, AuditService
from edge_agent.services.people import find_by_reference
from edge_agent.services.rules import shift_problems, weekday_names

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
# Reserved: the CLI's way of saying "no shift from now on".
NO_SHIFT = "none"


@dataclass(frozen=True, slots=True)
class ShiftSpec:
    """A shift as an admin describes it; the defaults are common HR values."""

    name: str
    days: Sequence[int]
    start: time
    end: time
    checkin_before: timedelta = timedelta(minutes=60)
    checkout_after: timedelta = timedelta(minutes=120)
    late_grace: timedelta = timedelta(minutes=5)
    early_exit_grace: timedelta = timedelta(minutes=5)
    half_day_below: timedelta = timedelta(hours=4)
    absent_below: timedelta = timedelta(hours=2)


class ShiftService:
    def __init__(
        self,
        shifts: ShiftRepository,
        people: PeopleRepository,
        audit: AuditService,
        clock: Clock,
        timezone: ZoneInfo,
    ) -> None:
        self._shifts = shifts
        self._people = people
        self._audit = audit
        self._clock = clock
        self._timezone = timezone

    async def create(self, spec: ShiftSpec, actor: Principal) -> Shift:
        """Store a new shift; :class:`InvalidInput` says what is wrong with it."""
        shift = self._shift(spec)
        problems = shift_problems(shift)
        if not _NAME.match(shift.name) or shift.name == NO_SHIFT:
            problems.insert(0, "name must be 1-32 of a-z, 0-9, '-', '_' (not 'none')")
        if problems:
            raise InvalidInput(f"shift {spec.name!r}: {'; '.join(problems)}")

        async with self._audit.atomic():
            await self._shifts.add(shift)
            await self._audit.record(
                actor,
                AuditAction.SHIFT_CREATED,
                target=f"shift:{shift.name}",
                details=_details(shift),
            )
        logger.info("Created shift %s", shift.name)
        return shift

    async def list_shifts(self) -> list[Shift]:
        return await self._shifts.all()

    async def assign(
        self,
        person_ref: str,
        shift_name: str | None,
        effective_from: date | None,
        actor: Principal,
    ) -> ShiftAssignment:
        """Give the person ``shift_name`` (``None``: no shift) from
        ``effective_from`` on (default: today, site-local)."""
        person = await find_by_reference(self._people, person_ref)
        shift = await self._shifts.get(shift_name) if shift_name else None
        assignment = ShiftAssignment(
            person_id=person.id,
            shift=shift,
            effective_from=effective_from or self._today(),
            assigned_at=self._clock.now(),
            assigned_by=actor.label,
        )

        async with self._audit.atomic():
            await self._shifts.assign(assignment)
            await self._audit.record(
                actor,
                AuditAction.SHIFT_ASSIGNED,
                target=f"person:{person.id}",
                details={
                    "shift": shift.name if shift else None,
                    "effective_from": assignment.effective_from.isoformat(),
                },
            )
        logger.info(
            "Assigned shift %s to person %s from %s",
            shift.name if shift else NO_SHIFT,
            person.id,
            assignment.effective_from,
        )
        return assignment

    def _shift(self, spec: ShiftSpec) -> Shift:
        return Shift(
            name=spec.name.strip(),
            days=tuple(sorted(set(spec.days))),
            start=spec.start.replace(tzinfo=None),
            end=spec.end.replace(tzinfo=None),
            checkin_before=spec.checkin_before,
            checkout_after=spec.checkout_after,
            late_grace=spec.late_grace,
            early_exit_grace=spec.early_exit_grace,
            half_day_below=spec.half_day_below,
            absent_below=spec.absent_below,
            created_at=self._clock.now(),
        )

    def _today(self) -> date:
        return self._clock.now().astimezone(self._timezone).date()


def _details(shift: Shift) -> dict[str, object]:
    return {
        "days": weekday_names(shift.days),
        "start": shift.start.isoformat(),
        "end": shift.end.isoformat(),
        "checkin_before_s": shift.checkin_before.total_seconds(),
        "checkout_after_s": shift.checkout_after.total_seconds(),
        "late_grace_s": shift.late_grace.total_seconds(),
        "early_exit_grace_s": shift.early_exit_grace.total_seconds(),
        "half_day_below_s": shift.half_day_below.total_seconds(),
        "absent_below_s": shift.absent_below.total_seconds(),
    }
