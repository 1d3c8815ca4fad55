"""Attendance service: what was found in frames becomes decisions and marks."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import date

from edge_agent.clients.storage.attendance import (
    AttendanceQuery,
    AttendanceRepository,
    FrameDecisionsToStore,
    NewDecision,
)
from edge_agent.clients.storage.people import PeopleRepository
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
class FrameFindings:
    """What the pipeline learned about one frame: its faces, or why it has none
    worth recognizing (``refusal``: an outcome and its reason)."""

    frame: Frame
    camera: Camera
    faces: list[RecognizedFace] = field(default_factory=list)
    refusal: tuple[Outcome, str] | None = None


@dataclass(frozen=True, slots=True)
class FrameDecisions:
    """The stored decisions of one frame, and the people they name."""

    decisions: list[Decision]
    people: dict[str, Person]


@dataclass(slots=True)
class _Batch:
    """State shared by the frames decided together."""

    people: dict[str, Person] = field(default_factory=dict)
    # Marks made earlier in the same batch count as a person's last mark.
    marked_now: dict[str, Mark] = field(default_factory=dict)


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
        # with another batch, or one sighting could become two marks.
        self._decide_lock = asyncio.Lock()

    async def decide_batch(
        self, findings: list[FrameFindings]
    ) -> dict[str, FrameDecisions]:
        """Judge every face of every frame and store it all in one commit.

        Frames no longer queued (decided before) are left out of the answer.
        """
        batch = _Batch()
        async with self._decide_lock:
            to_store = [await self._judge_frame(batch, item) for item in findings]
            stored = await self._attendance.record(to_store)

        for frame_id, decisions in stored.items():
            for decision in decisions:
                logger.debug(
                    "Frame %s: %s (%s)", frame_id, decision.outcome, decision.reason
                )
        return {fid: FrameDecisions(d, batch.people) for fid, d in stored.items()}

    async def decide(
        self, frame: Frame, camera: Camera, faces: list[RecognizedFace]
    ) -> FrameDecisions:
        """Decide one queued frame on its own."""
        decided = await self.decide_batch([FrameFindings(frame, camera, faces)])
        return decided.get(frame.id, FrameDecisions([], {}))

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

    async def decisions_of(self, frame_id: str) -> FrameDecisions:
        decisions = await self._attendance.list_decisions(frame_id)
        people = {}
        for person_id in {d.person_id for d in decisions if d.person_id}:
            person = await self._people.find(person_id)
            if person is not None:
                people[person_id] = person
        return FrameDecisions(decisions, people)

    def today(self) -> date:
        """The site-local date now."""
        return self._clock.now().astimezone(self.policy.timezone).date()

    async def _resolve_person(self, reference: str) -> str:
        found = await self._people.find(reference)
        if found is None:
            found = await self._people.get_by_employee_no(reference)
        return found.id

    async def _judge_frame(
        self, batch: _Batch, item: FrameFindings
    ) -> FrameDecisionsToStore:
        if item.refusal is not None:
            pending = [self._unjudged(item, *item.refusal)]
        elif not item.faces:
            reason = "the recognizer found no face in the frame"
            pending = [self._unjudged(item, Outcome.NO_FACE, reason)]
        else:
            pending = [await self._judge_face(batch, item, f) for f in item.faces]
        return FrameDecisionsToStore(item.frame.id, self._clock.now(), pending)

    async def _judge_face(
        self, batch: _Batch, item: FrameFindings, face: RecognizedFace
    ) -> NewDecision:
        best = face.best
        person = await self._people.find(best.subject) if best else None
        last = None
        if person is not None:
            batch.people[person.id] = person
            last = batch.marked_now.get(person.id)
            last = last or await self._attendance.last_mark(person.id)

        frame = item.frame
        verdict = judge(face, person, item.camera, last, frame.captured_at, self.policy)
        marks = verdict.outcome is Outcome.MARKED
        new = NewDecision(
            frame_id=frame.id,
            camera_id=item.camera.id,
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
        if marks and new.person_id is not None:
            batch.marked_now[new.person_id] = _provisional_mark(new)
        return new

    def _unjudged(
        self, item: FrameFindings, outcome: Outcome, reason: str
    ) -> NewDecision:
        return NewDecision(
            frame_id=item.frame.id,
            camera_id=item.camera.id,
            outcome=outcome,
            reason=reason,
            person_id=None,
            subject=None,
            similarity=None,
            captured_at=item.frame.captured_at,
            decided_at=self._clock.now(),
        )


def _provisional_mark(new: NewDecision) -> Mark:
    """A stand-in for a mark not yet committed, for the rest of the same batch."""
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
