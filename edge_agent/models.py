"""Domain records passed between services, clients and controllers (no I/O here)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any


class PersonStatus(enum.StrEnum):
    ACTIVE = "active"
    INACTIVE = "inactive"
    # Personal fields and face data are gone; the row stays because the
    # attendance marks and decisions made of the person still name its id.
    ERASED = "erased"


class Direction(enum.StrEnum):
    """Which way a camera watches: entry marks check-in, exit marks check-out."""

    ENTRY = "entry"
    EXIT = "exit"
    BOTH = "both"


class EventType(enum.StrEnum):
    """What the appliance tells the building's other systems about."""

    UNKNOWN_FACE = "face.unknown"
    ATTENDANCE_MARKED = "attendance.marked"
    CAMERA_OFFLINE = "camera.offline"
    CAMERA_ONLINE = "camera.online"
    SYSTEM_ANOMALY = "system.anomaly"
    SYSTEM_RECOVERED = "system.recovered"


class CameraState(enum.StrEnum):
    """What the health monitor concludes about a camera.

    ``idle``: outside the camera's active schedule, so silence is expected.
    """

    ONLINE = "online"
    STALE = "stale"
    OFFLINE = "offline"
    DISABLED = "disabled"
    IDLE = "idle"


# The outbox stream that event sinks read, and that sync ships as "events".
EVENTS_STREAM = "events"


class MarkKind(enum.StrEnum):
    CHECK_IN = "check_in"
    CHECK_OUT = "check_out"


class MarkClass(enum.StrEnum):
    """How a mark stands against the person's shift, judged when it is made."""

    ON_TIME = "on_time"
    LATE = "late"
    EARLY_EXIT = "early_exit"
    # The person has a shift, but the mark falls outside its windows.
    OUTSIDE_SHIFT = "outside_shift"
    # The person has no shift on that day.
    UNSCHEDULED = "unscheduled"


class MarkSource(enum.StrEnum):
    """Who made a mark: the rules alone, a reviewer, or an admin's correction."""

    RECOGNITION = "recognition"
    REVIEW = "review"
    MANUAL = "manual"


class Outcome(enum.StrEnum):
    """What became of one face in one frame."""

    MARKED = "marked"
    DUPLICATE = "duplicate"
    UNKNOWN = "unknown"
    INACTIVE_PERSON = "inactive_person"
    NO_FACE = "no_face"
    # The frame itself was refused after acceptance (quality gate, partial
    # decode); the reason names the gate.
    REJECTED = "rejected"
    # The same bytes from the same camera came moments ago.
    DUPLICATE_FRAME = "duplicate_frame"
    # Between the unknown and the match threshold: waits for a reviewer.
    NEEDS_REVIEW = "needs_review"
    # The two best subjects are too close to tell apart.
    AMBIGUOUS = "ambiguous"
    # Multi-frame confirmation: not yet seen in enough recent frames.
    PENDING_CONFIRMATION = "pending_confirmation"


class ReasonCode(enum.StrEnum):
    """Why a decision came out as it did: stable, for filters and reports; the
    decision's ``reason`` says the same in words, with the numbers."""

    MARKED = "marked"
    DUPLICATE_WINDOW = "duplicate_window"
    NO_FACE = "no_face"
    NO_CANDIDATE = "no_candidate"
    BELOW_UNKNOWN_THRESHOLD = "below_unknown_threshold"
    AMBIGUOUS_MARGIN = "ambiguous_margin"
    SUBJECT_NOT_ENROLLED = "subject_not_enrolled"
    PERSON_INACTIVE = "person_inactive"
    PERSON_ERASED = "person_erased"
    PERSON_NOT_YET_VALID = "person_not_yet_valid"
    PERSON_EXPIRED = "person_expired"
    GREY_ZONE = "grey_zone"
    # A grey-zone sighting of someone who already waits for review on the
    # same camera: recorded, but not queued a second time.
    GREY_ZONE_REPEAT = "grey_zone_repeat"
    AWAITING_CONFIRMATION = "awaiting_confirmation"
    QUALITY_TOO_DARK = "quality_too_dark"
    QUALITY_TOO_BRIGHT = "quality_too_bright"
    QUALITY_TOO_BLURRY = "quality_too_blurry"
    QUALITY_TOO_SMALL = "quality_too_small"
    FRAME_UNDECODABLE = "frame_undecodable"
    FRAME_MISSING = "frame_missing"
    RECOGNIZER_REFUSED = "recognizer_refused"
    # Stored before reason codes existed, with a reason no rule maps.
    UNCLASSIFIED = "unclassified"


class DecisionRule(enum.StrEnum):
    """The rule that settled a decision (``ReasonCode`` says how it ruled)."""

    RECOGNITION = "recognition"
    UNKNOWN_THRESHOLD = "unknown_threshold"
    MARGIN = "margin"
    ENROLLMENT = "enrollment"
    PERSON_STATUS = "person_status"
    PERSON_VALIDITY = "person_validity"
    MATCH_THRESHOLD = "match_threshold"
    DUPLICATE_WINDOW = "duplicate_window"
    CONFIRMATION = "confirmation"
    QUALITY_GATE = "quality_gate"
    FRAME = "frame"
    LEGACY = "legacy"


@dataclass(frozen=True, slots=True)
class Person:
    """Someone who can be marked; ``id`` is also their subject at the recognizer.

    ``valid_from`` and ``valid_until`` bound the period in which the person may
    be marked, both inclusive: a ``date`` covers that whole site-local day, a
    ``datetime`` (timezone-aware) is an instant. ``None`` leaves that side open.
    """

    id: str
    employee_no: str
    name: str
    department: str | None
    status: PersonStatus
    created_at: datetime
    valid_from: date | datetime | None = None
    valid_until: date | datetime | None = None
    erased_at: datetime | None = None

    def valid_at(self, moment: datetime, timezone: tzinfo) -> bool:
        """Whether ``moment`` lies within the validity bounds; ``timezone`` is
        the site's, which decides the day a date bound covers."""
        day = moment.astimezone(timezone).date()
        start, end = self.valid_from, self.valid_until
        # datetime is a subclass of date, so it is tested first.
        if isinstance(start, datetime):
            if moment < start:
                return False
        elif start is not None and day < start:
            return False
        if isinstance(end, datetime):
            return moment <= end
        return end is None or day <= end


@dataclass(frozen=True, slots=True)
class FaceExample:
    """The link between a person and one enrolled image.

    ``id`` is the appliance's own; ``example_id`` is the recognizer's id of the
    example, which changes when a repair enrolls the image again.
    ``image_sha256`` is the digest of the image as uploaded; ``enrolled_by``
    the audit label of whoever enrolled it.
    """

    id: str
    person_id: str
    image_sha256: str
    enrolled_at: datetime
    example_id: str
    enrolled_by: str | None = None


@dataclass(frozen=True, slots=True)
class ActiveWindow:
    """Part of a camera's active schedule, in site-local wall-clock time.

    ``days`` are the weekdays the window starts on (0 is Monday); it crosses
    midnight when ``end`` is not after ``start``, so 22:00-06:00 on Friday
    covers Saturday morning too, and 00:00-00:00 is the whole day.
    """

    days: tuple[int, ...]
    start: time
    end: time

    def covers(self, local: datetime) -> bool:
        """Whether the naive or aware site-local ``local`` lies in the window."""
        clock = local.time().replace(tzinfo=None)
        day = local.weekday()
        if self.end > self.start:
            return day in self.days and self.start <= clock < self.end
        if day in self.days and clock >= self.start:
            return True
        return (day - 1) % 7 in self.days and clock < self.end


@dataclass(frozen=True, slots=True)
class Camera:
    """A registered camera. ``expected_interval_s`` of ``None`` takes the site
    default and 0 leaves the camera unwatched; ``match_threshold`` replaces the
    attendance rules' threshold on this camera; an empty ``schedule`` means
    always active. A removed camera keeps its row, for the decisions it made."""

    id: str
    name: str
    direction: Direction
    created_at: datetime
    location: str | None = None
    expected_interval_s: float | None = None
    match_threshold: float | None = None
    probe_url: str | None = None
    schedule: tuple[ActiveWindow, ...] = ()
    enabled: bool = True
    removed_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def removed(self) -> bool:
        return self.removed_at is not None

    def active_at(self, moment: datetime, timezone: tzinfo) -> bool:
        """Whether the schedule expects frames at ``moment``."""
        if not self.schedule:
            return True
        local = moment.astimezone(timezone)
        return any(window.covers(local) for window in self.schedule)


@dataclass(frozen=True, slots=True)
class Candidate:
    """One subject the recognizer proposes for a face, with its similarity."""

    subject: str
    similarity: float


@dataclass(frozen=True, slots=True)
class Box:
    x_min: int
    y_min: int
    x_max: int
    y_max: int
    probability: float


@dataclass(frozen=True, slots=True)
class RecognizedFace:
    box: Box
    candidates: tuple[Candidate, ...] = ()

    @property
    def best(self) -> Candidate | None:
        return max(self.candidates, key=lambda c: c.similarity, default=None)


@dataclass(frozen=True, slots=True)
class Frame:
    """A frame that decoded, with the metadata the camera sent."""

    id: str
    camera_id: str
    captured_at: datetime
    received_at: datetime
    sha256: str
    width: int
    height: int
    content: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class Mark:
    """A check-in or check-out. ``local_day`` is the site-local calendar date of
    ``marked_at``; ``work_day`` the day it counts for, which for a night shift's
    check-out is the day the shift started. A manual mark has no camera,
    similarity or decision; a voided one stays stored but no longer counts."""

    id: int
    person_id: str
    camera_id: str | None
    kind: MarkKind
    marked_at: datetime
    local_day: str
    similarity: float | None
    decision_id: int | None
    work_day: str | None = None
    classification: MarkClass = MarkClass.UNSCHEDULED
    source: MarkSource = MarkSource.RECOGNITION
    shift: str | None = None
    voided: bool = False

    @property
    def counts_for(self) -> str:
        """The day the mark counts for (its work day, else its calendar day)."""
        return self.work_day or self.local_day


@dataclass(frozen=True, slots=True)
class Decision:
    """The stored verdict for one face of one frame, mark or not, with its reason."""

    id: int
    frame_id: str
    camera_id: str
    outcome: Outcome
    reason: str
    person_id: str | None
    subject: str | None
    similarity: float | None
    decided_at: datetime
    captured_at: datetime
    mark: Mark | None = None
    reason_code: ReasonCode = ReasonCode.UNCLASSIFIED
    rule: DecisionRule = DecisionRule.LEGACY
    review_id: int | None = None


@dataclass(frozen=True, slots=True)
class AttendanceRow:
    """A mark joined with the person it belongs to, as listings show it."""

    mark: Mark
    employee_no: str
    name: str


class Role(enum.StrEnum):
    """What a principal may do, by the permission matrix in ``gateway.rbac``."""

    ADMIN = "admin"
    USER = "user"
    CAMERA = "camera"


class PrincipalKind(enum.StrEnum):
    ACCOUNT = "account"  # a person signed in with a password
    TOKEN = "token"  # a token issued for automation, for any subject
    CAMERA = "camera"  # a camera with its API key
    LOCAL = "local"  # the site admin at the appliance's own CLI


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is acting: resolved from credentials, recorded in the audit log."""

    kind: PrincipalKind
    subject: str
    role: Role
    token_id: str | None = None
    camera_id: str | None = None

    @property
    def label(self) -> str:
        return f"{self.kind.value}:{self.subject}"


def local_admin(user: str) -> Principal:
    """The principal of a command run at the appliance itself."""
    return Principal(PrincipalKind.LOCAL, user, Role.ADMIN)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One link of the audit hash chain: who did what, to what, when, from where."""

    seq: int
    at: datetime
    actor: str
    actor_role: str | None
    action: str
    target: str | None
    source: str | None
    outcome: str
    details: dict[str, Any]
    prev_hash: str
    hash: str


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class Shift:
    """A named schedule in site-local wall-clock time.

    ``days`` are the weekdays it starts on (0 is Monday); it crosses midnight
    when ``end`` is not after ``start``. The durations are the HR rules: how
    early a check-in and how late a check-out still count for it, the grace
    before a check-in is late or a check-out early, and the worked time below
    which the day is a half day or an absence.
    """

    name: str
    days: tuple[int, ...]
    start: time
    end: time
    checkin_before: timedelta
    checkout_after: timedelta
    late_grace: timedelta
    early_exit_grace: timedelta
    half_day_below: timedelta
    absent_below: timedelta
    created_at: datetime

    @property
    def crosses_midnight(self) -> bool:
        return self.end <= self.start


@dataclass(frozen=True, slots=True)
class ShiftAssignment:
    """From ``effective_from`` (a site-local date) on, the person works
    ``shift``; ``None`` ends an earlier assignment."""

    person_id: str
    shift: Shift | None
    effective_from: date
    assigned_at: datetime
    assigned_by: str


class ReviewState(enum.StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class Review:
    """A grey-zone match waiting for, or settled by, a reviewer.

    ``person_id`` is whom the recognizer proposed; ``confirmed_person_id``
    whom the reviewer confirmed; ``result_code`` what confirming made of it
    (``marked``, or the rule that still kept it from being a mark).
    """

    id: int
    decision_id: int
    frame_id: str
    camera_id: str
    person_id: str | None
    subject: str | None
    similarity: float
    captured_at: datetime
    created_at: datetime
    state: ReviewState
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    comment: str | None = None
    confirmed_person_id: str | None = None
    result_code: ReasonCode | None = None
    mark_id: int | None = None


class CorrectionAction(enum.StrEnum):
    ADD = "add"
    VOID = "void"


@dataclass(frozen=True, slots=True)
class Correction:
    """An admin's correction: a mark added by hand, or a mark voided. It is a
    record of its own; the mark it voids is never changed."""

    id: int
    action: CorrectionAction
    mark_id: int
    person_id: str
    comment: str
    actor: str
    created_at: datetime


class DayStatus(enum.StrEnum):
    PRESENT = "present"
    LATE = "late"
    HALF_DAY = "half_day"
    ABSENT = "absent"
    # Not scheduled that day, and no mark.
    OFF = "off"


@dataclass(frozen=True, slots=True)
class DailyRow:
    """One person's work day, from the marks that count for it."""

    person_id: str
    employee_no: str
    name: str
    day: date
    shift: str | None
    scheduled: bool
    first_in: datetime | None
    last_out: datetime | None
    worked: timedelta
    status: DayStatus
    late: bool
    early_exit: bool
    missing_check_out: bool
    manual: bool
    marks: int
