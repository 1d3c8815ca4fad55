"""Attendance rules: judge faces, place marks in shifts. Service layer, no I/O.

Pure functions that judge faces, place marks in shifts and sum up work days.

Kept apart from the service so that every rule can be tested with plain
values, and so that a decision can be explained by its inputs alone.

Times: instants are timezone-aware and compared as instants, so a duplicate
window or a worked time is the same length on a day the clocks change. Shift
times are site-local wall-clock times, turned into instants for each day with
:mod:`zoneinfo`: a start that falls in the hour skipped in spring is read with
the offset before the change (02:30 becomes 03:30), one that falls in the hour
repeated in autumn means its first occurrence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from edge_agent.config import AttendanceSettings, CameraRules
from edge_agent.models import (
    WEEKDAYS,
    Camera,
    Candidate,
    DailyRow,
    DayStatus,
    DecisionRule,
    Direction,
    Mark,
    MarkClass,
    MarkKind,
    MarkSource,
    Outcome,
    Person,
    PersonStatus,
    ReasonCode,
    RecognizedFace,
    Shift,
    ShiftAssignment,
)

# A shift's window (early check-in + the shift + late check-out) must be
# shorter than a 23-hour day, so that two days' windows never meet, even on
# the day the clocks spring forward.
MAX_SHIFT_WINDOW = timedelta(hours=23)

_QUALITY_CODES = {
    "too_dark": ReasonCode.QUALITY_TOO_DARK,
    "too_bright": ReasonCode.QUALITY_TOO_BRIGHT,
    "too_blurry": ReasonCode.QUALITY_TOO_BLURRY,
    "too_small": ReasonCode.QUALITY_TOO_SMALL,
}


# --- policy -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Confirmation:
    """Multi-frame confirmation: ``frames`` of the camera's last
    ``window_frames`` frames, all within ``window`` of each other, must show
    the person. One frame of one (the default) turns it off."""

    frames: int = 1
    window_frames: int = 1
    window: timedelta = timedelta(seconds=10)

    @property
    def required(self) -> bool:
        return self.frames > 1


@dataclass(frozen=True, slots=True)
class CameraOverride:
    """A camera's own values; ``None`` keeps the site-wide one."""

    match_threshold: float | None = None
    unknown_threshold: float | None = None
    margin: float | None = None
    confirmation: Confirmation | None = None


@dataclass(frozen=True, slots=True)
class CameraPolicy:
    """The thresholds that apply on one camera, overrides resolved."""

    match_threshold: float
    unknown_threshold: float
    margin: float
    confirmation: Confirmation


@dataclass(frozen=True, slots=True)
class AttendancePolicy:
    """Site-wide rules. ``unknown_threshold`` defaults to the match threshold
    (no grey zone); a ``margin`` of 0 turns the margin rule off."""

    match_threshold: float
    duplicate_window: timedelta
    timezone: ZoneInfo
    unknown_threshold: float | None = None
    margin: float = 0.0
    confirmation: Confirmation = Confirmation()
    cameras: Mapping[str, CameraOverride] = field(default_factory=dict)

    def for_camera(
        self, camera_id: str, match_threshold: float | None = None
    ) -> CameraPolicy:
        """The rules on one camera; ``match_threshold`` is the one registered
        with the camera, which wins over the settings' override for it."""
        own = self.cameras.get(camera_id, CameraOverride())
        match = _first(match_threshold, own.match_threshold, self.match_threshold)
        unknown = _first(own.unknown_threshold, self.unknown_threshold, match)
        return CameraPolicy(
            match_threshold=match,
            # Never above the match threshold: the grey zone cannot be negative.
            unknown_threshold=min(match, unknown),
            margin=_first(own.margin, self.margin),
            confirmation=own.confirmation or self.confirmation,
        )


def policy_from_settings(settings: AttendanceSettings) -> AttendancePolicy:
    """The policy the ``[attendance]`` settings describe."""
    cameras = {
        camera_id: CameraOverride(
            match_threshold=rules.match_threshold,
            unknown_threshold=rules.unknown_threshold,
            margin=rules.margin,
            confirmation=_camera_confirmation(settings, rules),
        )
        for camera_id, rules in settings.cameras.items()
    }
    return AttendancePolicy(
        match_threshold=settings.match_threshold,
        duplicate_window=timedelta(seconds=settings.duplicate_window_s),
        timezone=ZoneInfo(settings.timezone),
        unknown_threshold=settings.unknown_threshold,
        margin=settings.margin,
        confirmation=Confirmation(
            settings.confirm_frames,
            settings.confirm_window_frames,
            timedelta(seconds=settings.confirm_window_s),
        ),
        cameras=cameras,
    )


def _camera_confirmation(
    settings: AttendanceSettings, rules: CameraRules
) -> Confirmation | None:
    own = (rules.confirm_frames, rules.confirm_window_frames, rules.confirm_window_s)
    if own == (None, None, None):
        return None
    window_s = _first(rules.confirm_window_s, settings.confirm_window_s)
    return Confirmation(
        int(_first(rules.confirm_frames, settings.confirm_frames)),
        int(_first(rules.confirm_window_frames, settings.confirm_window_frames)),
        timedelta(seconds=window_s),
    )


def _first(*values: float | None) -> float:
    """The first value that is set: a camera's own, then the site's."""
    for value in values:
        if value is not None:
            return value
    raise ValueError("a threshold needs a value or a default")


# --- days ---------------------------------------------------------------------


def local_day(moment: datetime, policy: AttendancePolicy) -> str:
    """The site-local calendar date of ``moment``, as YYYY-MM-DD."""
    return moment.astimezone(policy.timezone).date().isoformat()


def day_bounds(day: date, timezone: ZoneInfo) -> tuple[datetime, datetime]:
    """The instants (UTC) a site-local calendar day starts and ends at; 23 or
    25 hours apart on the days the clocks change."""
    start = datetime.combine(day, time(0), timezone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), timezone)
    return start, end.astimezone(UTC)


# --- one face -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a face came to: the outcome, why in words and as a stable code,
    the rule that settled it, and the kind of mark it makes or would make."""

    outcome: Outcome
    reason: str
    code: ReasonCode
    rule: DecisionRule
    mark_kind: MarkKind | None = None


def judge(
    face: RecognizedFace,
    person: Person | None,
    camera: Camera,
    last_mark: Mark | None,
    captured_at: datetime,
    policy: AttendancePolicy,
    *,
    work_day: str | None = None,
    sightings: int = 1,
    open_review_at: datetime | None = None,
) -> Verdict:
    """Decide what one face means: a mark, or the first rule that says why not.

    ``work_day`` is the day a mark now would count for (default: the calendar
    day); ``sightings`` how many of the camera's recent frames show the same
    subject, this one included; ``open_review_at`` when the person last went
    to the review queue from this camera, if that review is still open.
    """
    rules = policy.for_camera(camera.id, camera.match_threshold)
    best = face.best
    if best is None:
        return Verdict(
            Outcome.UNKNOWN,
            "no enrolled subject resembles the face",
            ReasonCode.NO_CANDIDATE,
            DecisionRule.RECOGNITION,
        )

    early = _similarity_verdict(face, best, rules) or _person_verdict(
        person, best, captured_at, policy
    )
    if early is not None:
        return early
    if best.similarity < rules.match_threshold:
        return _grey_zone(best, rules, captured_at, open_review_at, policy)

    kind = mark_kind(camera.direction, last_mark, captured_at, policy, work_day)
    return _marking_verdict(
        best, camera, kind, last_mark, captured_at, policy, rules, sightings
    )


def judge_reviewed(
    person: Person,
    camera: Camera,
    previous: Mark | None,
    nearest: Mark | None,
    captured_at: datetime,
    policy: AttendancePolicy,
    *,
    work_day: str | None = None,
) -> Verdict:
    """What a reviewer's confirmation makes: a mark as of the capture time,
    unless the person may not be marked then or it repeats a mark near it.

    A review is settled later than the frame came, so the marks around the
    capture time matter, not the latest one: ``previous`` is the person's last
    mark before it (which way a two-way camera goes), ``nearest`` the mark
    closest to it on either side (the duplicate window).
    """
    refusal = person_refusal(person, captured_at, policy.timezone)
    if refusal is not None:
        return refusal

    kind = mark_kind(camera.direction, previous, captured_at, policy, work_day)
    if is_duplicate(camera.direction, kind, nearest, captured_at, policy):
        return _duplicate(kind, nearest, policy)
    return Verdict(
        Outcome.MARKED,
        "a reviewer confirmed the match",
        ReasonCode.MARKED,
        DecisionRule.MATCH_THRESHOLD,
        kind,
    )


def runner_up(face: RecognizedFace) -> Candidate | None:
    """The most similar candidate naming another subject than the best one."""
    best = face.best
    others = [c for c in face.candidates if best is None or c.subject != best.subject]
    return max(others, key=lambda c: c.similarity, default=None)


def confident_subject(face: RecognizedFace, rules: CameraPolicy) -> str | None:
    """The subject a face counts for in multi-frame confirmation, if any: a
    match at or above the threshold that the margin rule does not doubt."""
    best = face.best
    if best is None or best.similarity < rules.match_threshold:
        return None
    second = runner_up(face)
    if second is not None and _within_margin(best, second, rules):
        return None
    return best.subject


def _similarity_verdict(
    face: RecognizedFace, best: Candidate, rules: CameraPolicy
) -> Verdict | None:
    if best.similarity < rules.unknown_threshold:
        return Verdict(
            Outcome.UNKNOWN,
            f"best similarity {best.similarity:.3f} is below the unknown "
            f"threshold {rules.unknown_threshold:.3f}",
            ReasonCode.BELOW_UNKNOWN_THRESHOLD,
            DecisionRule.UNKNOWN_THRESHOLD,
        )
    second = runner_up(face)
    if second is not None and _within_margin(best, second, rules):
        return Verdict(
            Outcome.AMBIGUOUS,
            f"{best.subject!r} ({best.similarity:.3f}) and {second.subject!r} "
            f"({second.similarity:.3f}) are within the margin {rules.margin:.3f}",
            ReasonCode.AMBIGUOUS_MARGIN,
            DecisionRule.MARGIN,
        )
    return None


def _within_margin(best: Candidate, second: Candidate, rules: CameraPolicy) -> bool:
    """Whether the runner-up is too close to the best match to tell them apart;
    a margin of 0 turns the rule off."""
    return rules.margin > 0 and best.similarity - second.similarity < rules.margin


def _person_verdict(
    person: Person | None,
    best: Candidate,
    captured_at: datetime,
    policy: AttendancePolicy,
) -> Verdict | None:
    if person is None:
        return Verdict(
            Outcome.UNKNOWN,
            f"recognizer subject {best.subject!r} is no known person",
            ReasonCode.SUBJECT_NOT_ENROLLED,
            DecisionRule.ENROLLMENT,
        )
    return person_refusal(person, captured_at, policy.timezone)


def person_refusal(
    person: Person, moment: datetime, timezone: ZoneInfo
) -> Verdict | None:
    """Why ``person`` may not be marked at ``moment``, or ``None`` if they may.

    A validity bound that is a date covers that whole site-local day; one that
    is an instant is compared as an instant. Both bounds are inclusive.
    """
    if person.status is not PersonStatus.ACTIVE:
        erased = person.status is PersonStatus.ERASED
        return Verdict(
            Outcome.INACTIVE_PERSON,
            f"person {person.id} is {person.status.value}",
            ReasonCode.PERSON_ERASED if erased else ReasonCode.PERSON_INACTIVE,
            DecisionRule.PERSON_STATUS,
        )

    valid_from, valid_until = person.valid_from, person.valid_until
    if valid_from is not None and _before(moment, valid_from, timezone):
        return Verdict(
            Outcome.INACTIVE_PERSON,
            f"person {person.id} may be marked only from {valid_from.isoformat()}",
            ReasonCode.PERSON_NOT_YET_VALID,
            DecisionRule.PERSON_VALIDITY,
        )
    if valid_until is not None and _after(moment, valid_until, timezone):
        return Verdict(
            Outcome.INACTIVE_PERSON,
            f"person {person.id} may be marked only until {valid_until.isoformat()}",
            ReasonCode.PERSON_EXPIRED,
            DecisionRule.PERSON_VALIDITY,
        )
    return None


def on_roll(person: Person, day: date, timezone: ZoneInfo) -> bool:
    """Whether ``person`` is active and may be marked at some time of ``day``."""
    if person.status is not PersonStatus.ACTIVE:
        return False
    start, end = day_bounds(day, timezone)
    valid_from, valid_until = person.valid_from, person.valid_until
    # The last instant of the day still belongs to it; the end bound does not.
    last = end - timedelta(microseconds=1)
    if valid_from is not None and _before(last, valid_from, timezone):
        return False
    return valid_until is None or not _after(start, valid_until, timezone)


def _before(moment: datetime, bound: date, timezone: ZoneInfo) -> bool:
    # datetime is a subclass of date, so it is tested first.
    if isinstance(bound, datetime):
        return moment < _aware(bound)
    return moment.astimezone(timezone).date() < bound


def _after(moment: datetime, bound: date, timezone: ZoneInfo) -> bool:
    if isinstance(bound, datetime):
        return moment > _aware(bound)
    return moment.astimezone(timezone).date() > bound


def _aware(moment: datetime) -> datetime:
    """A bound stored without a zone is read as UTC, like every stored time."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _grey_zone(
    best: Candidate,
    rules: CameraPolicy,
    captured_at: datetime,
    open_review_at: datetime | None,
    policy: AttendancePolicy,
) -> Verdict:
    between = (
        f"similarity {best.similarity:.3f} is between the unknown threshold "
        f"{rules.unknown_threshold:.3f} and the match threshold "
        f"{rules.match_threshold:.3f}"
    )
    # Someone lingering in front of the camera must not fill the queue: while
    # a review of them from this camera is open and recent, one is enough.
    waiting = open_review_at is not None and (
        abs(captured_at - open_review_at) < policy.duplicate_window
    )
    if waiting:
        return Verdict(
            Outcome.NEEDS_REVIEW,
            f"{between}; a review of the same person is already open",
            ReasonCode.GREY_ZONE_REPEAT,
            DecisionRule.MATCH_THRESHOLD,
        )
    return Verdict(
        Outcome.NEEDS_REVIEW,
        f"{between}; queued for review",
        ReasonCode.GREY_ZONE,
        DecisionRule.MATCH_THRESHOLD,
    )


def _marking_verdict(
    best: Candidate,
    camera: Camera,
    kind: MarkKind,
    last_mark: Mark | None,
    captured_at: datetime,
    policy: AttendancePolicy,
    rules: CameraPolicy,
    sightings: int,
) -> Verdict:
    if is_duplicate(camera.direction, kind, last_mark, captured_at, policy):
        return _duplicate(kind, last_mark, policy)

    confirmation = rules.confirmation
    if confirmation.required and sightings < confirmation.frames:
        return Verdict(
            Outcome.PENDING_CONFIRMATION,
            f"seen in {sightings} of the last {confirmation.window_frames} frames "
            f"within {confirmation.window.total_seconds():g} s; "
            f"{confirmation.frames} needed",
            ReasonCode.AWAITING_CONFIRMATION,
            DecisionRule.CONFIRMATION,
            kind,
        )
    rule = (
        DecisionRule.CONFIRMATION
        if confirmation.required
        else DecisionRule.MATCH_THRESHOLD
    )
    return Verdict(
        Outcome.MARKED,
        f"similarity {best.similarity:.3f} meets the match threshold "
        f"{rules.match_threshold:.3f}",
        ReasonCode.MARKED,
        rule,
        kind,
    )


def mark_kind(
    direction: Direction,
    last_mark: Mark | None,
    captured_at: datetime,
    policy: AttendancePolicy,
    work_day: str | None = None,
) -> MarkKind:
    """Entry cameras check in, exit cameras check out; a two-way camera alternates
    with the person's last mark of the same work day (default: calendar day)."""
    if direction is Direction.ENTRY:
        return MarkKind.CHECK_IN
    if direction is Direction.EXIT:
        return MarkKind.CHECK_OUT
    today = work_day or local_day(captured_at, policy)
    same_day = last_mark is not None and last_mark.counts_for == today
    if same_day and last_mark is not None and last_mark.kind is MarkKind.CHECK_IN:
        return MarkKind.CHECK_OUT
    return MarkKind.CHECK_IN


def is_duplicate(
    direction: Direction,
    kind: MarkKind,
    last_mark: Mark | None,
    captured_at: datetime,
    policy: AttendancePolicy,
) -> bool:
    """Whether a mark of ``kind`` now would repeat ``last_mark``."""
    if last_mark is None:
        return False
    # abs(): a frame captured just before the last mark (late delivery) is
    # as much a repeat as one captured just after it.
    within = abs(captured_at - last_mark.marked_at) < policy.duplicate_window
    # On a two-way camera the kind alternates, so any recent mark is a repeat:
    # someone standing in front of it must not check in and out at once.
    same_way = last_mark.kind is kind or direction is Direction.BOTH
    return within and same_way


def _duplicate(
    kind: MarkKind, last_mark: Mark | None, policy: AttendancePolicy
) -> Verdict:
    window = int(policy.duplicate_window.total_seconds())
    mark_id = last_mark.id if last_mark is not None else "?"
    return Verdict(
        Outcome.DUPLICATE,
        f"already marked (mark {mark_id}) within the {window} s duplicate window",
        ReasonCode.DUPLICATE_WINDOW,
        DecisionRule.DUPLICATE_WINDOW,
        kind,
    )


def refusal_code(outcome: Outcome, reason: str) -> tuple[ReasonCode, DecisionRule]:
    """The code of a frame the pipeline refused before recognition, read from
    the reason it gave (a quality gate's name, or a sentence)."""
    if outcome is Outcome.NO_FACE:
        return ReasonCode.NO_FACE, DecisionRule.RECOGNITION
    if reason in _QUALITY_CODES:
        return _QUALITY_CODES[reason], DecisionRule.QUALITY_GATE
    if reason.startswith("the recognizer refused"):
        return ReasonCode.RECOGNIZER_REFUSED, DecisionRule.FRAME
    if "spool file is missing" in reason:
        return ReasonCode.FRAME_MISSING, DecisionRule.FRAME
    return ReasonCode.FRAME_UNDECODABLE, DecisionRule.FRAME


# --- multi-frame confirmation -------------------------------------------------


@dataclass(frozen=True, slots=True)
class FrameSighting:
    """Whom one frame of a camera showed with confidence."""

    frame_id: str
    captured_at: datetime
    subjects: frozenset[str]


def agreeing_frames(
    history: Sequence[FrameSighting],
    subject: str,
    now: datetime,
    confirmation: Confirmation,
) -> int:
    """How many of the last ``window_frames`` frames (oldest first, the current
    one last), captured within ``window`` of ``now``, show ``subject``."""
    recent = history[-confirmation.window_frames :]
    return sum(
        1
        for sighting in recent
        if subject in sighting.subjects
        and abs(now - sighting.captured_at) <= confirmation.window
    )


# --- shifts -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One day's instance of a shift: ``day`` is the day it starts on, which
    every mark within its windows counts for; the instants are UTC."""

    shift: Shift
    day: date
    start: datetime
    end: datetime

    @property
    def opens(self) -> datetime:
        return self.start - self.shift.checkin_before

    @property
    def closes(self) -> datetime:
        return self.end + self.shift.checkout_after


@dataclass(frozen=True, slots=True)
class Attribution:
    """Where a moment falls: the work day it counts for, the shift occurrence
    whose windows hold it (if any), and the shift in effect on that day."""

    work_day: date
    occurrence: Occurrence | None
    shift: Shift | None


def shift_problems(shift: Shift) -> list[str]:
    """What is wrong with a shift definition; empty when it can be used."""
    problems = []
    if not shift.days or any(d not in range(7) for d in shift.days):
        problems.append("days must name at least one weekday")
    if shift.start == shift.end:
        problems.append("start and end must differ")
    durations = (
        shift.checkin_before,
        shift.checkout_after,
        shift.late_grace,
        shift.early_exit_grace,
        shift.half_day_below,
        shift.absent_below,
    )
    if any(d < timedelta(0) for d in durations):
        problems.append("durations and thresholds must not be negative")
    if shift.absent_below > shift.half_day_below:
        problems.append("the absent threshold must not exceed the half-day one")
    window = shift_length(shift) + shift.checkin_before + shift.checkout_after
    if window >= MAX_SHIFT_WINDOW:
        problems.append(
            "the shift with its check-in and check-out windows must be shorter "
            "than 23 hours"
        )
    return problems


def shift_length(shift: Shift) -> timedelta:
    """The shift's wall-clock length (an hour more or less on a DST night)."""
    start = timedelta(hours=shift.start.hour, minutes=shift.start.minute)
    end = timedelta(hours=shift.end.hour, minutes=shift.end.minute)
    if shift.crosses_midnight:
        end += timedelta(days=1)
    return end - start


def weekday_names(days: Sequence[int]) -> list[str]:
    return [WEEKDAYS[d] for d in sorted(days)]


def occurrence(shift: Shift, day: date, timezone: ZoneInfo) -> Occurrence:
    """The shift as worked on ``day`` (whether or not it runs that weekday)."""
    end_day = day + timedelta(days=1) if shift.crosses_midnight else day
    start = datetime.combine(day, shift.start, timezone).astimezone(UTC)
    end = datetime.combine(end_day, shift.end, timezone).astimezone(UTC)
    # A shift starting in the skipped spring hour and ending right after it
    # could otherwise end before it starts.
    return Occurrence(shift, day, start, max(start, end))


def shift_on(schedule: Sequence[ShiftAssignment], day: date) -> Shift | None:
    """The shift assigned for ``day``: the latest assignment effective by then."""
    current: ShiftAssignment | None = None
    for assignment in schedule:
        if assignment.effective_from <= day:
            current = assignment
    return current.shift if current is not None else None


def runs_on(shift: Shift | None, day: date) -> bool:
    return shift is not None and day.weekday() in shift.days


def attribute(
    moment: datetime, schedule: Sequence[ShiftAssignment], timezone: ZoneInfo
) -> Attribution:
    """Place ``moment`` in the person's shifts.

    A mark within a shift occurrence's windows (from ``checkin_before`` before
    its start to ``checkout_after`` after its end) counts for the day the
    occurrence started: a night shift's check-out after midnight counts for
    the evening before. Outside every window it counts for its calendar day.
    """
    calendar_day = moment.astimezone(timezone).date()
    # The day before: a night shift still open; the day after: an early
    # check-in, before midnight, for a shift starting just after it.
    for offset in (1, 0, -1):
        day = calendar_day + timedelta(days=offset)
        shift = shift_on(schedule, day)
        if shift is None or not runs_on(shift, day):
            continue
        found = occurrence(shift, day, timezone)
        if found.opens <= moment <= found.closes:
            return Attribution(day, found, shift)
    return Attribution(calendar_day, None, shift_on(schedule, calendar_day))


def classify(kind: MarkKind, moment: datetime, attribution: Attribution) -> MarkClass:
    """On time, late, early exit or outside the shift, by the shift's graces."""
    found = attribution.occurrence
    if found is None:
        if attribution.shift is None:
            return MarkClass.UNSCHEDULED
        return MarkClass.OUTSIDE_SHIFT

    shift = found.shift
    if kind is MarkKind.CHECK_IN:
        if moment <= found.start + shift.late_grace:
            return MarkClass.ON_TIME
        return MarkClass.LATE if moment < found.end else MarkClass.OUTSIDE_SHIFT
    if moment < found.start:
        return MarkClass.OUTSIDE_SHIFT
    if moment < found.end - shift.early_exit_grace:
        return MarkClass.EARLY_EXIT
    return MarkClass.ON_TIME


# --- work days ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Worked:
    """Worked time from check-in/check-out pairs, and whether a check-in is
    still waiting for its check-out."""

    total: timedelta
    open: bool


def worked_time(marks: Sequence[Mark]) -> Worked:
    """Sum the intervals from each check-in to the next check-out, in time order.

    A second check-in while one is open is ignored (the person never left);
    a check-out with no open check-in is ignored (it closes nothing).
    """
    total = timedelta(0)
    opened: datetime | None = None
    for mark in sorted(marks, key=lambda m: (m.marked_at, m.id)):
        if mark.kind is MarkKind.CHECK_IN:
            opened = opened or mark.marked_at
        elif opened is not None:
            total += mark.marked_at - opened
            opened = None
    return Worked(total, opened is not None)


def daily_row(
    person: Person, day: date, marks: Sequence[Mark], shift: Shift | None
) -> DailyRow:
    """One person's work day from the marks that count for it (voided ones are
    skipped) and the shift in effect that day."""
    counted = sorted(
        (m for m in marks if not m.voided and m.counts_for == day.isoformat()),
        key=lambda m: (m.marked_at, m.id),
    )
    ins = [m for m in counted if m.kind is MarkKind.CHECK_IN]
    outs = [m for m in counted if m.kind is MarkKind.CHECK_OUT]
    worked = worked_time(counted)
    late = bool(ins) and ins[0].classification is MarkClass.LATE
    early = bool(outs) and outs[-1].classification is MarkClass.EARLY_EXIT

    return DailyRow(
        person_id=person.id,
        employee_no=person.employee_no,
        name=person.name,
        day=day,
        shift=shift.name if shift is not None else None,
        scheduled=runs_on(shift, day),
        first_in=ins[0].marked_at if ins else None,
        last_out=outs[-1].marked_at if outs else None,
        worked=worked.total,
        status=day_status(counted, worked, shift, day, late),
        late=late,
        early_exit=early,
        missing_check_out=worked.open,
        manual=any(m.source is MarkSource.MANUAL for m in counted),
        marks=len(counted),
    )


def day_status(
    counted: Sequence[Mark],
    worked: Worked,
    shift: Shift | None,
    day: date,
    late: bool,
) -> DayStatus:
    """Present, late, half day or absent by the shift's thresholds.

    The thresholds apply only to a day closed by a check-out: while a
    check-in waits for its check-out the worked time is not known yet.
    """
    if not counted:
        return DayStatus.ABSENT if runs_on(shift, day) else DayStatus.OFF
    if shift is None or not runs_on(shift, day) or worked.open:
        return DayStatus.LATE if late else DayStatus.PRESENT
    if worked.total < shift.absent_below:
        return DayStatus.ABSENT
    if worked.total < shift.half_day_below:
        return DayStatus.HALF_DAY
    return DayStatus.LATE if late else DayStatus.PRESENT
