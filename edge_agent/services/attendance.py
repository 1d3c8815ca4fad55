"""Attendance service: frames become decisions and marks, read back. Service layer.

What was found in frames becomes decisions and marks; listings and the daily
report read them back.

The rules themselves are pure functions in :mod:`edge_agent.services.rules`;
this module gathers what they need (the person, the last mark, the shift, the
camera's recent frames), applies them, and stores the outcome.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from edge_agent.clients.storage.attendance import (
    AttendanceQuery,
    AttendanceRepository,
    DecisionQuery,
    FrameDecisionsToStore,
    NewDecision,
    NewMark,
)
from edge_agent.clients.storage.outbox import NewRecord
from edge_agent.clients.storage.people import PeopleRepository
from edge_agent.clients.storage.shifts import ShiftRepository
from edge_agent.clock import Clock
from edge_agent.errors import NotFound, Refused
from edge_agent.models import (
    AttendanceRow,
    Camera,
    DailyRow,
    Decision,
    Frame,
    Mark,
    MarkKind,
    MarkSource,
    Outcome,
    Person,
    ReasonCode,
    RecognizedFace,
    Review,
    Shift,
    ShiftAssignment,
)
from edge_agent.observability.metrics import Metrics
from edge_agent.services.confirmation import ConfirmationTracker
from edge_agent.services.events import (
    UnknownFaceThrottle,
    attendance_marked_event,
    unknown_face_event,
)

# Re-exported: the controllers take the listings' limits from this module.
from edge_agent.services.paging import (
    MAX_PAGE_SIZE as MAX_PAGE_SIZE,
)
from edge_agent.services.paging import (
    check_cursor,
    check_limit,
    split_page,
)
from edge_agent.services.people import find_by_reference
from edge_agent.services.rules import (
    AttendancePolicy,
    Attribution,
    Confirmation,
    FrameSighting,
    Verdict,
    agreeing_frames,
    attribute,
    classify,
    confident_subject,
    daily_row,
    day_bounds,
    judge,
    judge_reviewed,
    local_day,
    on_roll,
    person_refusal,
    refusal_code,
    shift_on,
)

logger = logging.getLogger(__name__)

MAX_MARKS_PAGE = 10_000


@dataclass(frozen=True, slots=True)
class FrameFindings:
    """What the pipeline learned about one frame: its faces, or why it has none
    worth recognizing (``refusal``: an outcome and its reason, and optionally
    the reason code; without one it is read from the reason)."""

    frame: Frame
    camera: Camera
    faces: list[RecognizedFace] = field(default_factory=list)
    refusal: tuple[Outcome, str] | None = None
    refusal_code: ReasonCode | None = None


@dataclass(frozen=True, slots=True)
class FrameDecisions:
    """The stored decisions of one frame, and the people they name."""

    decisions: list[Decision]
    people: dict[str, Person]


@dataclass(frozen=True, slots=True)
class MarkFilter:
    """Which marks a listing wants: ``day`` is the site-local calendar day,
    ``person`` an id or employee number."""

    day: date | None = None
    person: str | None = None
    camera_id: str | None = None
    include_voided: bool = False


@dataclass(frozen=True, slots=True)
class MarkPage:
    rows: list[AttendanceRow]
    next_cursor: int | None


@dataclass(frozen=True, slots=True)
class DecisionFilter:
    """Which decisions a listing wants: ``day`` is the site-local day of the
    capture time, ``person`` an id or employee number."""

    day: date | None = None
    camera_id: str | None = None
    person: str | None = None
    outcome: Outcome | None = None
    reason_code: ReasonCode | None = None


@dataclass(frozen=True, slots=True)
class DecisionPage:
    decisions: list[Decision]
    people: dict[str, Person]
    next_cursor: int | None


@dataclass(slots=True)
class _Batch:
    """State shared by the frames decided together."""

    people: dict[str, Person | None] = field(default_factory=dict)
    schedules: dict[str, list[ShiftAssignment]] = field(default_factory=dict)
    # Marks and reviews made earlier in the same batch count as the latest.
    marked_now: dict[str, Mark] = field(default_factory=dict)
    reviewed_now: dict[tuple[str, str], datetime] = field(default_factory=dict)

    def known_people(self) -> dict[str, Person]:
        return {pid: p for pid, p in self.people.items() if p is not None}


@dataclass(frozen=True, slots=True)
class _Sightings:
    """A camera's recent frames, the current one last, and the confirmation
    rule that counts them."""

    history: Sequence[FrameSighting]
    confirmation: Confirmation

    def of(self, subject: str, moment: datetime) -> int:
        """How many of the frames the rule looks at show ``subject``."""
        return agreeing_frames(self.history, subject, moment, self.confirmation)


@dataclass(frozen=True, slots=True)
class _Context:
    """What a face is judged against besides itself."""

    last_mark: Mark | None
    attribution: Attribution
    sightings: int
    open_review_at: datetime | None


class AttendanceService:
    def __init__(
        self,
        attendance: AttendanceRepository,
        people: PeopleRepository,
        policy: AttendancePolicy,
        clock: Clock,
        *,
        shifts: ShiftRepository | None = None,
        confirmations: ConfirmationTracker | None = None,
        on_events: Callable[[], None] | None = None,
        metrics: Metrics | None = None,
        unknown_face_interval_s: float = 0.0,
    ) -> None:
        """``shifts`` absent: nobody has a shift, every mark is unscheduled.
        ``on_events`` is called after a commit that wrote events; at most one
        ``face.unknown`` per camera per ``unknown_face_interval_s``."""
        self._metrics = metrics
        interval = timedelta(seconds=unknown_face_interval_s)
        self._unknown_faces = UnknownFaceThrottle(interval)
        self._attendance = attendance
        self._people = people
        self.policy = policy
        self._clock = clock
        self._shifts = shifts
        self._confirmations = confirmations or ConfirmationTracker()
        self._on_events = on_events
        # Reading a person's last mark and storing the next must not interleave
        # with another batch, or one sighting could become two marks.
        self._decide_lock = asyncio.Lock()

    # --- deciding -------------------------------------------------------------

    async def decide_batch(
        self, findings: list[FrameFindings]
    ) -> dict[str, FrameDecisions]:
        """Judge every face of every frame and store it all in one commit.

        Frames no longer queued (decided before) are left out of the answer.
        """
        batch = _Batch()
        events = _EventTally(self._unknown_faces)
        async with self._decide_lock:
            with self._stage("decide"):
                to_store = [await self._judge_frame(batch, item) for item in findings]
            with self._stage("commit"):
                stored = await self._attendance.record(to_store, events.of)
        if events.written and self._on_events is not None:
            self._on_events()

        for frame_id, decisions in stored.items():
            for decision in decisions:
                logger.debug(
                    "Frame %s: %s (%s)", frame_id, decision.outcome, decision.reason
                )
        people = batch.known_people()
        return {fid: FrameDecisions(d, people) for fid, d in stored.items()}

    def _stage(self, name: str) -> AbstractContextManager[object]:
        if self._metrics is None:
            return nullcontext()
        return self._metrics.stage_latency.labels(name).time()

    async def decide(
        self, frame: Frame, camera: Camera, faces: list[RecognizedFace]
    ) -> FrameDecisions:
        """Decide one queued frame on its own."""
        decided = await self.decide_batch([FrameFindings(frame, camera, faces)])
        return decided.get(frame.id, FrameDecisions([], {}))

    def mark_events(self, mark: Mark) -> list[NewRecord]:
        """The events a mark made outside a frame (a review, a correction)
        makes; store them with it, then call :meth:`events_written`."""
        return [attendance_marked_event(mark)]

    def events_written(self) -> None:
        if self._on_events is not None:
            self._on_events()

    @asynccontextmanager
    async def marking(self) -> AsyncIterator[None]:
        """Hold off the deciding of frames while a review or a correction reads
        the marks and stores its own."""
        async with self._decide_lock:
            yield

    async def plan_reviewed(
        self, review: Review, person: Person, camera: Camera
    ) -> tuple[Verdict, NewMark | None]:
        """What confirming ``review`` as ``person`` makes, as of the frame's
        capture time; call it inside :meth:`marking` and store the result there.
        """
        moment = review.captured_at
        attribution = attribute(moment, await self._schedule(person.id), self._tz)
        previous = await self._attendance.last_mark(person.id, before=moment)
        nearest = await self._attendance.nearest_mark(person.id, moment)
        verdict = judge_reviewed(
            person,
            camera,
            previous,
            nearest,
            moment,
            self.policy,
            work_day=attribution.work_day.isoformat(),
        )
        if verdict.mark_kind is None or verdict.outcome is not Outcome.MARKED:
            return verdict, None
        mark = self._new_mark(
            person.id, camera.id, verdict.mark_kind, moment, attribution
        )
        return verdict, replace(
            mark, similarity=review.similarity, source=MarkSource.REVIEW
        )

    async def plan_manual(
        self, person: Person, kind: MarkKind, moment: datetime, camera_id: str | None
    ) -> NewMark:
        """The manual mark an admin adds, placed in the person's shift; call it
        inside :meth:`marking`. Refused for someone who may not be marked then."""
        refusal = person_refusal(person, moment, self._tz)
        if refusal is not None:
            raise Refused(refusal.reason, reason_code=refusal.code.value)

        attribution = attribute(moment, await self._schedule(person.id), self._tz)
        mark = self._new_mark(person.id, camera_id, kind, moment, attribution)
        return replace(mark, source=MarkSource.MANUAL)

    # --- reading --------------------------------------------------------------

    async def list_marks(
        self,
        day: date | None = None,
        person: str | None = None,
        camera_id: str | None = None,
        limit: int = 1000,
    ) -> list[AttendanceRow]:
        """Counted marks in time order; ``person`` is an id or employee number."""
        page = await self.page_marks(MarkFilter(day, person, camera_id), None, limit)
        return page.rows

    async def page_marks(
        self, filters: MarkFilter, cursor: int | None, limit: int
    ) -> MarkPage:
        """Marks in time order after ``cursor`` (the last mark id of the
        previous page); voided marks only when asked for."""
        check_limit(limit, MAX_MARKS_PAGE)
        check_cursor(cursor)
        person_id = await self._person_id(filters.person)
        query = AttendanceQuery(
            filters.day,
            person_id,
            filters.camera_id,
            limit + 1,
            after_id=cursor,
            include_voided=filters.include_voided,
        )
        found = await self._attendance.query(query)
        return MarkPage(*split_page(found, limit, lambda row: row.mark.id))

    async def get_mark(self, mark_id: int) -> Mark:
        mark = await self._attendance.get_mark(mark_id)
        if mark is None:
            raise NotFound(f"no mark {mark_id}")
        return mark

    async def page_decisions(
        self, filters: DecisionFilter, cursor: int | None, limit: int
    ) -> DecisionPage:
        """Decisions, mark or not, oldest first, after ``cursor`` (an id)."""
        check_limit(limit)
        check_cursor(cursor)
        since, until = (
            day_bounds(filters.day, self._tz) if filters.day else (None, None)
        )
        query = DecisionQuery(
            since=since,
            until=until,
            camera_id=filters.camera_id,
            person_id=await self._person_id(filters.person),
            outcome=filters.outcome,
            reason_code=filters.reason_code,
            after_id=cursor or 0,
            limit=limit + 1,
        )
        found = await self._attendance.page_decisions(query)
        decisions, next_cursor = split_page(found, limit, lambda d: d.id)
        people = await self._people_named(decisions)
        return DecisionPage(decisions, people, next_cursor)

    async def decisions_of(self, frame_id: str) -> FrameDecisions:
        decisions = await self._attendance.list_decisions(frame_id)
        return FrameDecisions(decisions, await self._people_named(decisions))

    async def daily_report(self, day: date) -> list[DailyRow]:
        """Each person's work day: everyone with a counted mark for ``day``, and
        every active person who may be marked that day."""
        marks = await self._attendance.marks_counting_for(day)
        by_person: dict[str, list[Mark]] = {}
        for mark in marks:
            by_person.setdefault(mark.person_id, []).append(mark)
        schedules = await self._shifts.schedules() if self._shifts else {}

        people = await self._people_of_day(day, set(by_person))
        rows = [
            daily_row(p, day, by_person.get(p.id, []), _shift_of(schedules, p, day))
            for p in people
        ]
        return sorted(rows, key=lambda row: row.employee_no)

    async def find_person(self, reference: str) -> Person:
        """A person by id or, failing that, by employee number."""
        return await find_by_reference(self._people, reference)

    def today(self) -> date:
        """The site-local date now."""
        return self._clock.now().astimezone(self._tz).date()

    # --- helpers --------------------------------------------------------------

    @property
    def _tz(self) -> ZoneInfo:
        return self.policy.timezone

    async def _judge_frame(
        self, batch: _Batch, item: FrameFindings
    ) -> FrameDecisionsToStore:
        if item.refusal is not None:
            pending = [self._unjudged(item, *item.refusal)]
        else:
            seen = self._observe(item)
            pending = [await self._judge_face(batch, item, f, seen) for f in item.faces]
        if not pending:
            reason = "the recognizer found no face in the frame"
            pending = [self._unjudged(item, Outcome.NO_FACE, reason)]
        return FrameDecisionsToStore(item.frame.id, self._clock.now(), pending)

    def _observe(self, item: FrameFindings) -> _Sightings:
        """Record whom the frame shows for multi-frame confirmation; a frame
        without faces counts too, as one that shows nobody."""
        rules = self.policy.for_camera(item.camera.id, item.camera.match_threshold)
        found = (confident_subject(face, rules) for face in item.faces)
        subjects = frozenset(s for s in found if s is not None)
        frame = item.frame
        history = self._confirmations.observe(
            item.camera.id, frame.id, frame.captured_at, subjects
        )
        return _Sightings(history, rules.confirmation)

    async def _judge_face(
        self,
        batch: _Batch,
        item: FrameFindings,
        face: RecognizedFace,
        seen: _Sightings,
    ) -> NewDecision:
        best = face.best
        person = await self._person(batch, best.subject) if best else None
        context = await self._context(batch, item, person, seen)

        verdict = judge(
            face,
            person,
            item.camera,
            context.last_mark,
            item.frame.captured_at,
            self.policy,
            work_day=context.attribution.work_day.isoformat(),
            sightings=context.sightings,
            open_review_at=context.open_review_at,
        )
        new = self._decision(item, face, person, verdict, context.attribution)
        _remember(batch, new)
        return new

    async def _context(
        self,
        batch: _Batch,
        item: FrameFindings,
        person: Person | None,
        seen: _Sightings,
    ) -> _Context:
        moment = item.frame.captured_at
        if person is None:
            return _Context(None, attribute(moment, [], self._tz), 0, None)

        schedule = batch.schedules.get(person.id)
        if schedule is None:
            schedule = batch.schedules[person.id] = await self._schedule(person.id)
        last = batch.marked_now.get(person.id)
        last = last or await self._attendance.last_mark(person.id)
        camera_id = item.camera.id
        review_at = batch.reviewed_now.get((person.id, camera_id))
        review_at = review_at or await self._attendance.latest_open_review(
            person.id, camera_id
        )

        sightings = seen.of(person.id, moment)
        attribution = attribute(moment, schedule, self._tz)
        return _Context(last, attribution, sightings, review_at)

    def _decision(
        self,
        item: FrameFindings,
        face: RecognizedFace,
        person: Person | None,
        verdict: Verdict,
        attribution: Attribution,
    ) -> NewDecision:
        best = face.best
        mark = None
        kind = verdict.mark_kind
        if verdict.outcome is Outcome.MARKED and person and kind and best:
            moment = item.frame.captured_at
            planned = self._new_mark(
                person.id, item.camera.id, kind, moment, attribution
            )
            mark = replace(planned, similarity=best.similarity)
        return NewDecision(
            frame_id=item.frame.id,
            camera_id=item.camera.id,
            outcome=verdict.outcome,
            reason=verdict.reason,
            person_id=person.id if person else None,
            subject=best.subject if best else None,
            similarity=best.similarity if best else None,
            captured_at=item.frame.captured_at,
            decided_at=self._clock.now(),
            reason_code=verdict.code,
            rule=verdict.rule,
            mark=mark,
            queue_review=verdict.code is ReasonCode.GREY_ZONE,
        )

    def _new_mark(
        self,
        person_id: str,
        camera_id: str | None,
        kind: MarkKind,
        moment: datetime,
        attribution: Attribution,
    ) -> NewMark:
        found = attribution.occurrence
        shift = found.shift if found is not None else attribution.shift
        return NewMark(
            person_id=person_id,
            camera_id=camera_id,
            kind=kind,
            marked_at=moment,
            local_day=local_day(moment, self.policy),
            work_day=attribution.work_day.isoformat(),
            similarity=None,
            classification=classify(kind, moment, attribution),
            shift=shift.name if shift is not None else None,
        )

    def _unjudged(
        self, item: FrameFindings, outcome: Outcome, reason: str
    ) -> NewDecision:
        code, rule = refusal_code(outcome, reason)
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
            reason_code=item.refusal_code or code,
            rule=rule,
        )

    async def _person(self, batch: _Batch, subject: str) -> Person | None:
        if subject not in batch.people:
            batch.people[subject] = await self._people.find(subject)
        return batch.people[subject]

    async def _person_id(self, reference: str | None) -> str | None:
        if reference is None:
            return None
        return (await self.find_person(reference)).id

    async def _schedule(self, person_id: str) -> list[ShiftAssignment]:
        if self._shifts is None:
            return []
        return await self._shifts.schedule(person_id)

    async def _people_named(self, decisions: Sequence[Decision]) -> dict[str, Person]:
        people = {}
        for person_id in {d.person_id for d in decisions if d.person_id}:
            person = await self._people.find(person_id)
            if person is not None:
                people[person_id] = person
        return people

    async def _people_of_day(self, day: date, marked: set[str]) -> list[Person]:
        everyone = {p.id: p for p in await self._people.all()}
        chosen = [
            p for p in everyone.values() if p.id in marked or on_roll(p, day, self._tz)
        ]
        # Someone marked that day but no longer listed (erased) still counts.
        for person_id in marked - set(everyone):
            person = await self._people.find(person_id)
            if person is not None:
                chosen.append(person)
        return chosen


class _EventTally:
    """Which events a batch's decisions make (an unknown face, a mark), and how
    many were written."""

    def __init__(self, unknown_faces: UnknownFaceThrottle) -> None:
        self.written = 0
        self._unknown_faces = unknown_faces

    def of(self, decision: Decision) -> list[NewRecord]:
        made = []
        if decision.outcome is Outcome.UNKNOWN:
            held = self._unknown_faces.admit(decision.camera_id, decision.captured_at)
            if held is not None:
                made.append(unknown_face_event(decision, held))
        if decision.mark is not None:
            made.append(attendance_marked_event(decision.mark))
        self.written += len(made)
        return made


def _remember(batch: _Batch, new: NewDecision) -> None:
    """Let the rest of the batch see the mark or review this decision made."""
    if new.person_id is None:
        return
    if new.mark is not None:
        batch.marked_now[new.person_id] = _provisional_mark(new.mark)
    if new.queue_review:
        batch.reviewed_now[(new.person_id, new.camera_id)] = new.captured_at


def _provisional_mark(new: NewMark) -> Mark:
    """A stand-in for a mark not yet committed, for the rest of the same batch."""
    return replace(new, decision_id=None).stored_as(0)


def _shift_of(
    schedules: dict[str, list[ShiftAssignment]], person: Person, day: date
) -> Shift | None:
    return shift_on(schedules.get(person.id, []), day)
