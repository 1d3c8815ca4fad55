"""Attendance rules: threshold, duplicate window, direction, unknown faces."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from edge_agent.models import (
    Box,
    Camera,
    Candidate,
    Direction,
    Mark,
    MarkKind,
    Outcome,
    Person,
    PersonStatus,
    RecognizedFace,
)
from edge_agent.services.rules import AttendancePolicy, judge, local_day

NOW = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)
POLICY = AttendancePolicy(0.85, timedelta(minutes=5), ZoneInfo("UTC"))
BOX = Box(0, 0, 10, 10, 1.0)
ALICE = Person("p1", "E1", "Alice", None, PersonStatus.ACTIVE, NOW)


def _face(*candidates: tuple[str, float]) -> RecognizedFace:
    return RecognizedFace(BOX, tuple(Candidate(s, v) for s, v in candidates))


def _camera(direction: Direction = Direction.ENTRY) -> Camera:
    return Camera("gate", "Gate", direction, NOW)


def _mark(kind: MarkKind, ago: timedelta) -> Mark:
    at = NOW - ago
    return Mark(7, "p1", "gate", kind, at, local_day(at, POLICY), 0.9, 3)


def test_confident_match_without_history_is_a_check_in() -> None:
    verdict = judge(_face(("p1", 0.93)), ALICE, _camera(), None, NOW, POLICY)

    assert verdict.outcome is Outcome.MARKED
    assert verdict.mark_kind is MarkKind.CHECK_IN
    assert "0.930" in verdict.reason


@pytest.mark.parametrize(
    ("face", "person", "reason_part"),
    [
        pytest.param(_face(), None, "no enrolled subject", id="no-candidates"),
        pytest.param(
            _face(("p1", 0.84)), ALICE, "below the match", id="below-threshold"
        ),
        pytest.param(
            _face(("ghost", 0.99)), None, "no known person", id="orphan-subject"
        ),
    ],
)
def test_faces_that_are_not_a_known_person_are_unknown(
    face: RecognizedFace, person: Person | None, reason_part: str
) -> None:
    verdict = judge(face, person, _camera(), None, NOW, POLICY)

    assert verdict.outcome is Outcome.UNKNOWN
    assert verdict.mark_kind is None
    assert reason_part in verdict.reason


def test_threshold_is_inclusive() -> None:
    verdict = judge(_face(("p1", 0.85)), ALICE, _camera(), None, NOW, POLICY)

    assert verdict.outcome is Outcome.MARKED


def test_inactive_person_is_not_marked() -> None:
    inactive = Person("p1", "E1", "Alice", None, PersonStatus.INACTIVE, NOW)

    verdict = judge(_face(("p1", 0.99)), inactive, _camera(), None, NOW, POLICY)

    assert verdict.outcome is Outcome.INACTIVE_PERSON


@pytest.mark.parametrize(
    ("ago", "outcome"),
    [
        pytest.param(timedelta(minutes=1), Outcome.DUPLICATE, id="one-minute-ago"),
        pytest.param(timedelta(minutes=-1), Outcome.DUPLICATE, id="late-delivery"),
        pytest.param(timedelta(minutes=5), Outcome.MARKED, id="window-elapsed"),
        pytest.param(timedelta(hours=3), Outcome.MARKED, id="hours-ago"),
    ],
)
def test_duplicate_window_on_the_same_direction(
    ago: timedelta, outcome: Outcome
) -> None:
    last = _mark(MarkKind.CHECK_IN, ago)

    verdict = judge(_face(("p1", 0.95)), ALICE, _camera(), last, NOW, POLICY)

    assert verdict.outcome is outcome


def test_exit_camera_checks_out_even_right_after_a_check_in() -> None:
    last = _mark(MarkKind.CHECK_IN, timedelta(minutes=1))

    verdict = judge(
        _face(("p1", 0.95)), ALICE, _camera(Direction.EXIT), last, NOW, POLICY
    )

    assert verdict.outcome is Outcome.MARKED
    assert verdict.mark_kind is MarkKind.CHECK_OUT


@pytest.mark.parametrize(
    ("last_kind", "ago", "expected"),
    [
        pytest.param(None, None, MarkKind.CHECK_IN, id="first-of-day"),
        pytest.param(
            MarkKind.CHECK_IN, timedelta(hours=4), MarkKind.CHECK_OUT, id="in-then-out"
        ),
        pytest.param(
            MarkKind.CHECK_OUT, timedelta(hours=1), MarkKind.CHECK_IN, id="out-then-in"
        ),
        pytest.param(
            MarkKind.CHECK_IN, timedelta(days=1), MarkKind.CHECK_IN, id="yesterday"
        ),
    ],
)
def test_two_way_camera_alternates_within_a_day(
    last_kind: MarkKind | None, ago: timedelta | None, expected: MarkKind
) -> None:
    last = _mark(last_kind, ago) if last_kind and ago else None

    verdict = judge(
        _face(("p1", 0.95)), ALICE, _camera(Direction.BOTH), last, NOW, POLICY
    )

    assert verdict.outcome is Outcome.MARKED
    assert verdict.mark_kind is expected


def test_two_way_camera_treats_any_recent_mark_as_a_duplicate() -> None:
    last = _mark(MarkKind.CHECK_IN, timedelta(seconds=30))

    verdict = judge(
        _face(("p1", 0.95)), ALICE, _camera(Direction.BOTH), last, NOW, POLICY
    )

    assert verdict.outcome is Outcome.DUPLICATE


def test_local_day_follows_the_site_time_zone() -> None:
    tokyo = AttendancePolicy(0.85, timedelta(minutes=5), ZoneInfo("Asia/Tokyo"))
    late_utc = datetime(2026, 3, 2, 20, 0, tzinfo=UTC)

    assert local_day(late_utc, POLICY) == "2026-03-02"
    assert local_day(late_utc, tokyo) == "2026-03-03"
