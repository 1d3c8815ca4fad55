"""Attendance service: turns recognized faces into stored decisions and marks."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import date

from edge_agent.clients.storage.repositories import (
    AttendanceQuery,
    AttendanceRepository,
    NewDecision,
    PeopleRepository,
)
from edge_agent.clock import Clock
from edge_agent.models import (
    AttendanceRow,
    Camera,
    Decision,
    Frame,
    Mark,
    Outcome,
    Person,
    RecognizedFace,
)
from edge_agent.services.rules import AttendancePolicy, judge, local_day

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FrameDecisions:
    """The stored decisions of one frame, and the people they name."""

    decisions: list[Decision]
    people: dict[str, Person]


@dataclass(frozen=True, slots=True)
class _Context:
    frame: Frame
    camera: Camera
    people: dict[str, Person] = field(default_factory=dict)


class AttendanceService:
    def __init__(
        self,
        attendance: AttendanceRepository,
        people: PeopleRepository,
        policy: AttendancePolicy,
        clock: Clock,
    ) -> None:
        self._attendance = attendance
        self._people = people
        self.policy = policy
        self._clock = clock
        # Reading a person's last mark and storing the next must not interleave
        # with another frame of the same person, or both would be marks.
        self._decide_lock = asyncio.Lock()

    async def decide(
        self, frame: Frame, camera: Camera, faces: list[RecognizedFace]
    ) -> FrameDecisions:
        """Judge every face of the frame and store the decisions in one commit."""
        context = _Context(frame, camera)
        async with self._decide_lock:
            if not faces:
                pending = [self._no_face(context)]
            else:
                pending = await self._judge_all(context, faces)
            decisions = await self._attendance.record(pending)

        for decision in decisions:
            logger.info(
                "Frame %s from camera %s: %s (%s)",
                frame.id,
                camera.id,
                decision.outcome,
                decision.reason,
            )
        return FrameDecisions(decisions, context.people)

    async def list_marks(
        self,
        day: date | None = None,
        person: str | None = None,
        camera_id: str | None = None,
        limit: int = 1000,
    ) -> list[AttendanceRow]:
        """Marks in time order; ``person`` is a person id or an employee number."""
        person_id = await self._resolve_person(person) if person else None
        query = AttendanceQuery(day, person_id, camera_id, limit)
        return await self._attendance.query(query)

    def today(self) -> date:
        """The site-local date now."""
        return self._clock.now().astimezone(self.policy.timezone).date()

    async def _resolve_person(self, reference: str) -> str:
        found = await self._people.find(reference)
        if found is None:
            found = await self._people.get_by_employee_no(reference)
        return found.id

    async def _judge_all(
        self, context: _Context, faces: list[RecognizedFace]
    ) -> list[NewDecision]:
        # Marks made earlier in this same frame count as the last mark too.
        marked_now: dict[str, Mark] = {}
        pending = []
        for face in faces:
            new = await self._judge_one(context, face, marked_now)
            pending.append(new)
            if new.outcome is Outcome.MARKED and new.person_id is not None:
                marked_now[new.person_id] = _provisional_mark(new)
        return pending

    async def _judge_one(
        self, context: _Context, face: RecognizedFace, marked_now: dict[str, Mark]
    ) -> NewDecision:
        best = face.best
        person = await self._people.find(best.subject) if best else None
        last = None
        if person is not None:
            context.people[person.id] = person
            last = marked_now.get(person.id) or await self._attendance.last_mark(
                person.id
            )

        frame = context.frame
        verdict = judge(
            face, person, context.camera, last, frame.captured_at, self.policy
        )
        marks = verdict.outcome is Outcome.MARKED
        return NewDecision(
            frame_id=frame.id,
            camera_id=context.camera.id,
            outcome=verdict.outcome,
            reason=verdict.reason,
            person_id=person.id if person else None,
            subject=best.subject if best else None,
            similarity=best.similarity if best else None,
            captured_at=frame.captured_at,
            decided_at=self._clock.now(),
            mark_kind=verdict.mark_kind if marks else None,
            local_day=local_day(frame.captured_at, self.policy) if marks else None,
        )

    def _no_face(self, context: _Context) -> NewDecision:
        return NewDecision(
            frame_id=context.frame.id,
            camera_id=context.camera.id,
            outcome=Outcome.NO_FACE,
            reason="the recognizer found no face in the frame",
            person_id=None,
            subject=None,
            similarity=None,
            captured_at=context.frame.captured_at,
            decided_at=self._clock.now(),
        )


def _provisional_mark(new: NewDecision) -> Mark:
    """A stand-in for a mark not yet committed, for the rest of the same frame."""
    if new.person_id is None or new.mark_kind is None or new.local_day is None:
        raise ValueError("only a marking decision makes a mark")
    return Mark(
        id=0,
        person_id=new.person_id,
        camera_id=new.camera_id,
        kind=new.mark_kind,
        marked_at=new.captured_at,
        local_day=new.local_day,
        similarity=new.similarity or 0.0,
        decision_id=0,
    )
