"""Correction service: missed marks added, wrong ones voided, audited. Service layer.

Each correction carries an admin's comment and an audit entry. A correction
never rewrites a mark: an added mark is a new, manual one, and a voided mark
stays stored, flagged by the correction; listings, the daily report and the
duplicate and direction rules then leave it out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from edge_agent.clients.storage.cameras import CameraRepository
from edge_agent.clients.storage.corrections import (
    CorrectionNote,
    CorrectionRepository,
)
from edge_agent.clock import Clock, to_text
from edge_agent.errors import Conflict, InvalidInput, NotFound
from edge_agent.models import Correction, Mark, MarkKind, Principal
from edge_agent.services.attendance import AttendanceService
from edge_agent.services.audit import AuditAction, AuditService
from edge_agent.services.paging import check_limit, split_page

logger = logging.getLogger(__name__)

# A mark added "now" may carry a time a little ahead of the appliance clock
# (the admin's own clock); anything later is a mark for a time still to come.
_AHEAD_TOLERANCE = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class CorrectionPage:
    corrections: list[Correction]
    next_cursor: int | None


class CorrectionService:
    def __init__(
        self,
        corrections: CorrectionRepository,
        attendance: AttendanceService,
        cameras: CameraRepository,
        audit: AuditService,
        clock: Clock,
    ) -> None:
        self._corrections = corrections
        self._attendance = attendance
        self._cameras = cameras
        self._audit = audit
        self._clock = clock

    async def add_mark(
        self,
        person_ref: str,
        kind: MarkKind,
        at: datetime,
        camera_id: str | None,
        comment: str,
        actor: Principal,
    ) -> tuple[Correction, Mark]:
        """Add a mark someone missed, as of ``at``, placed in their shift."""
        note = self._note(comment, actor)
        if at > note.at + _AHEAD_TOLERANCE:
            raise InvalidInput("a mark cannot be added for a time still to come")
        person = await self._attendance.find_person(person_ref)
        if camera_id is not None and await self._cameras.find(camera_id) is None:
            raise NotFound(f"no camera {camera_id!r}")

        async with self._attendance.marking():
            planned = await self._attendance.plan_manual(person, kind, at, camera_id)
            async with self._audit.atomic():
                correction, mark = await self._corrections.add_mark(
                    planned, note, self._attendance.mark_events
                )
                details = {"kind": kind.value, "at": to_text(at)}
                await self._audit_correction(correction, actor, **details)
        self._attendance.events_written()
        return correction, mark

    async def void_mark(
        self, mark_id: int, comment: str, actor: Principal
    ) -> Correction:
        """Make a mark stop counting; the mark itself stays as it was."""
        note = self._note(comment, actor)
        async with self._attendance.marking():
            mark = await self._attendance.get_mark(mark_id)
            if mark.voided:
                raise Conflict(f"mark {mark_id} is already voided")
            async with self._audit.atomic():
                correction = await self._corrections.void(mark, note)
                await self._audit_correction(correction, actor, kind=mark.kind.value)
        return correction

    async def list_corrections(
        self, person: str | None, cursor: int | None, limit: int
    ) -> CorrectionPage:
        """Corrections oldest first, after ``cursor`` (the last id of a page)."""
        check_limit(limit)
        person_id = None
        if person is not None:
            person_id = (await self._attendance.find_person(person)).id

        found = await self._corrections.page(person_id, cursor or 0, limit + 1)
        return CorrectionPage(*split_page(found, limit, lambda c: c.id))

    def _note(self, comment: str, actor: Principal) -> CorrectionNote:
        text = comment.strip()
        if not text:
            raise InvalidInput("a correction needs a comment saying why")
        return CorrectionNote(text, actor.label, self._clock.now())

    async def _audit_correction(
        self, correction: Correction, actor: Principal, **details: str
    ) -> None:
        await self._audit.record(
            actor,
            AuditAction.ATTENDANCE_CORRECTED,
            target=f"mark:{correction.mark_id}",
            details={
                "action": correction.action.value,
                "correction_id": correction.id,
                "person_id": correction.person_id,
                "comment": correction.comment,
                **details,
            },
        )
        logger.info(
            "Correction %d: %s mark %d by %s",
            correction.id,
            correction.action.value,
            correction.mark_id,
            actor.label,
        )
