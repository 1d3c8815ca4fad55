"""Attendance rules: pure functions that judge one recognized face. No I/O.

Kept apart from the service so that every rule can be tested with plain
values, and so that a decision can be explained by its inputs alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from edge_agent.models import (
    Camera,
    Direction,
    Mark,
    MarkKind,
    Outcome,
    Person,
    PersonStatus,
    RecognizedFace,
)


@dataclass(frozen=True, slots=True)
class AttendancePolicy:
    match_threshold: float
    duplicate_window: timedelta
    timezone: ZoneInfo


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: Outcome
    reason: str
    mark_kind: MarkKind | None = None


def local_day(moment: datetime, policy: AttendancePolicy) -> str:
    """The site-local calendar date of ``moment``, as YYYY-MM-DD."""
    return moment.astimezone(policy.timezone).date().isoformat()


def judge(
    face: RecognizedFace,
    person: Person | None,
    camera: Camera,
    last_mark: Mark | None,
    captured_at: datetime,
    policy: AttendancePolicy,
) -> Verdict:
    """Decide what one face means: a mark, a duplicate, or why it is neither."""
    best = face.best
    if best is None:
        return Verdict(Outcome.UNKNOWN, "no enrolled subject resembles the face")
    if best.similarity < policy.match_threshold:
        return Verdict(
            Outcome.UNKNOWN,
            f"best similarity {best.similarity:.3f} is below the match "
            f"threshold {policy.match_threshold:.3f}",
        )
    if person is None:
        return Verdict(
            Outcome.UNKNOWN, f"recognizer subject {best.subject!r} is no known person"
        )
    if person.status is not PersonStatus.ACTIVE:
        return Verdict(Outcome.INACTIVE_PERSON, f"person {person.id} is inactive")

    kind = mark_kind(camera.direction, last_mark, captured_at, policy)
    if _is_duplicate(camera, kind, last_mark, captured_at, policy):
        return Verdict(Outcome.DUPLICATE, _duplicate_reason(last_mark, policy), kind)
    return Verdict(
        Outcome.MARKED,
        f"similarity {best.similarity:.3f} meets the match threshold "
        f"{policy.match_threshold:.3f}",
        kind,
    )


def mark_kind(
    direction: Direction,
    last_mark: Mark | None,
    captured_at: datetime,
    policy: AttendancePolicy,
) -> MarkKind:
    """Entry cameras check in, exit cameras check out; a two-way camera alternates
    with the person's last mark of the same local day."""
    if direction is Direction.ENTRY:
        return MarkKind.CHECK_IN
    if direction is Direction.EXIT:
        return MarkKind.CHECK_OUT
    same_day = last_mark is not None and last_mark.local_day == local_day(
        captured_at, policy
    )
    if same_day and last_mark is not None and last_mark.kind is MarkKind.CHECK_IN:
        return MarkKind.CHECK_OUT
    return MarkKind.CHECK_IN


def _is_duplicate(
    camera: Camera,
    kind: MarkKind,
    last_mark: Mark | None,
    captured_at: datetime,
    policy: AttendancePolicy,
) -> bool:
    if last_mark is None:
        return False
    # abs(): a frame captured just before the last mark (late delivery) is
    # as much a repeat as one captured just after it.
    within = abs(captured_at - last_mark.marked_at) < policy.duplicate_window
    # On a two-way camera the kind alternates, so any recent mark is a repeat:
    # someone standing in front of it must not check in and out at once.
    same_way = last_mark.kind is kind or camera.direction is Direction.BOTH
    return within and same_way


def _duplicate_reason(last_mark: Mark | None, policy: AttendancePolicy) -> str:
    window = int(policy.duplicate_window.total_seconds())
    mark_id = last_mark.id if last_mark is not None else "?"
    return f"already marked (mark {mark_id}) within the {window} s duplicate window"
