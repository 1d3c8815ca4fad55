"""Attendance rules: thresholds, margin, validity, duplicates, direction,
confirmation, shifts and work days, each with its reason code."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from edge_agent.config import ConfigError, load_settings
from edge_agent.models import (
    Box,
    Camera,
    Candidate,
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
from edge_agent.services.rules import (
    AttendancePolicy,
    CameraOverride,
    Confirmation,
    FrameSighting,
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
    policy_from_settings,
    refusal_code,
    shift_problems,
    worked_time,
)

NOW = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)  # a Monday
UTC_ZONE = ZoneInfo("UTC")
POLICY = AttendancePolicy(0.85, timedelta(minutes=5), UTC_ZONE)
GREY = AttendancePolicy(0.85, timedelta(minutes=5), UTC_ZONE, 0.60, 0.05)
BOX = Box(0, 0, 10, 10, 1.0)
ALICE = Person("p1", "E1", "Alice", None, PersonStatus.ACTIVE, NOW)


@dataclass(frozen=True)
class DatedPerson(Person):
    """A person with validity bounds, whatever fields Person itself has."""

    valid_from: date | datetime | None = None
    valid_until: date | datetime | None = None


def _face(*candidates: tuple[str, float]) -> RecognizedFace:
    return RecognizedFace(BOX, tuple(Candidate(s, v) for s, v in candidates))


def _camera(direction: Direction = Direction.ENTRY, camera_id: str = "gate") -> Camera:
    return Camera(camera_id, "Gate", direction, NOW)


def _mark(kind: MarkKind, ago: timedelta, **fields: object) -> Mark:
    at = NOW - ago
    return Mark(7, "p1", "gate", kind, at, local_day(at, POLICY), 0.9, 3, **fields)  # type: ignore[arg-type]


def _shift(start: time, end: time, **changes: timedelta) -> Shift:
    values = {
        "checkin_before": timedelta(minutes=60),
        "checkout_after": timedelta(minutes=120),
        "late_grace": timedelta(minutes=5),
        "early_exit_grace": timedelta(minutes=5),
        "half_day_below": timedelta(hours=4),
        "absent_below": timedelta(hours=2),
        **changes,
    }
    return Shift("s", tuple(range(7)), start, end, created_at=NOW, **values)


def _schedule(
    shift: Shift | None, since: date = date(2020, 1, 1)
) -> list[ShiftAssignment]:
    return [ShiftAssignment("p1", shift, since, NOW, "test")]


# --- thresholds and margin ----------------------------------------------------


def test_confident_match_without_history_is_a_check_in() -> None:
    verdict = judge(_face(("p1", 0.93)), ALICE, _camera(), None, NOW, POLICY)

    assert verdict.outcome is Outcome.MARKED
    assert verdict.code is ReasonCode.MARKED
    assert verdict.rule is DecisionRule.MATCH_THRESHOLD
    assert verdict.mark_kind is MarkKind.CHECK_IN
    assert "0.930" in verdict.reason


@pytest.mark.parametrize(
    ("face", "person", "code", "reason_part"),
    [
        pytest.param(
            _face(), None, ReasonCode.NO_CANDIDATE, "no enrolled", id="no-candidates"
        ),
        pytest.param(
            _face(("p1", 0.59)),
            ALICE,
            ReasonCode.BELOW_UNKNOWN_THRESHOLD,
            "below the unknown threshold 0.600",
            id="below-unknown",
        ),
        pytest.param(
            _face(("ghost", 0.99)),
            None,
            ReasonCode.SUBJECT_NOT_ENROLLED,
            "no known person",
            id="orphan-subject",
        ),
    ],
)
def test_faces_that_are_not_a_known_person_are_unknown(
    face: RecognizedFace, person: Person | None, code: ReasonCode, reason_part: str
) -> None:
    verdict = judge(face, person, _camera(), None, NOW, GREY)

    assert verdict.outcome is Outcome.UNKNOWN
    assert verdict.code is code
    assert verdict.mark_kind is None
    assert reason_part in verdict.reason


@pytest.mark.parametrize(
    ("similarity", "outcome", "code"),
    [
        pytest.param(
            0.599, Outcome.UNKNOWN, ReasonCode.BELOW_UNKNOWN_THRESHOLD, id="u-"
        ),
        pytest.param(0.60, Outcome.NEEDS_REVIEW, ReasonCode.GREY_ZONE, id="unknown"),
        pytest.param(0.849, Outcome.NEEDS_REVIEW, ReasonCode.GREY_ZONE, id="match-"),
        pytest.param(0.85, Outcome.MARKED, ReasonCode.MARKED, id="match"),
    ],
)
def test_two_thresholds_bound_the_grey_zone(
    similarity: float, outcome: Outcome, code: ReasonCode
) -> None:
    verdict = judge(_face(("p1", similarity)), ALICE, _camera(), None, NOW, GREY)

    assert (verdict.outcome, verdict.code) == (outcome, code)


def test_without_an_unknown_threshold_there_is_no_grey_zone() -> None:
    verdict = judge(_face(("p1", 0.84)), ALICE, _camera(), None, NOW, POLICY)

    assert verdict.code is ReasonCode.BELOW_UNKNOWN_THRESHOLD
    assert "0.850" in verdict.reason


def test_a_grey_zone_match_of_someone_waiting_for_review_is_not_queued_again() -> None:
    face = _face(("p1", 0.7))

    an_hour_ago = NOW - timedelta(hours=1)
    a_minute_ago = NOW - timedelta(minutes=1)

    stale = judge(face, ALICE, _camera(), None, NOW, GREY, open_review_at=an_hour_ago)
    waiting = judge(
        face, ALICE, _camera(), None, NOW, GREY, open_review_at=a_minute_ago
    )

    assert stale.code is ReasonCode.GREY_ZONE
    assert waiting.code is ReasonCode.GREY_ZONE_REPEAT
    assert waiting.outcome is Outcome.NEEDS_REVIEW


@pytest.mark.parametrize(
    ("second", "outcome"),
    [
        pytest.param(0.90, Outcome.AMBIGUOUS, id="within"),
        pytest.param(0.88, Outcome.MARKED, id="exactly-the-margin"),
        pytest.param(0.50, Outcome.MARKED, id="far-apart"),
    ],
)
def test_two_close_subjects_are_ambiguous(second: float, outcome: Outcome) -> None:
    face = _face(("p1", 0.93), ("p2", second))

    verdict = judge(face, ALICE, _camera(), None, NOW, GREY)

    assert verdict.outcome is outcome
    if outcome is Outcome.AMBIGUOUS:
        assert verdict.code is ReasonCode.AMBIGUOUS_MARGIN
        assert verdict.rule is DecisionRule.MARGIN
        assert "'p2'" in verdict.reason


def test_the_margin_compares_other_subjects_only() -> None:
    face = _face(("p1", 0.93), ("p1", 0.92))

    assert judge(face, ALICE, _camera(), None, NOW, GREY).outcome is Outcome.MARKED


def test_a_camera_may_have_its_own_thresholds() -> None:
    strict = AttendancePolicy(
        0.85,
        timedelta(minutes=5),
        UTC_ZONE,
        0.6,
        cameras={"vault": CameraOverride(match_threshold=0.95)},
    )
    face = _face(("p1", 0.9))

    at_gate = judge(face, ALICE, _camera(), None, NOW, strict)
    at_vault = judge(face, ALICE, _camera(camera_id="vault"), None, NOW, strict)

    assert at_gate.outcome is Outcome.MARKED
    assert at_vault.code is ReasonCode.GREY_ZONE
    assert "0.950" in at_vault.reason


def test_settings_become_the_policy_with_camera_overrides() -> None:
    settings = load_settings(
        overrides={
            "attendance": {
                "cameras": {
                    "door": {"match_threshold": 0.9, "confirm_frames": 2},
                },
                "confirm_window_frames": 3,
            }
        }
    )

    policy = policy_from_settings(settings.attendance)
    door, other = policy.for_camera("door"), policy.for_camera("other")

    assert (door.match_threshold, door.unknown_threshold) == (0.9, 0.70)
    assert door.confirmation == Confirmation(2, 3, timedelta(seconds=10))
    assert other.match_threshold == 0.85
    assert not other.confirmation.required


@pytest.mark.parametrize(
    ("attendance", "named"),
    [
        pytest.param(
            {"match_threshold": 0.6}, "unknown_threshold 0.7 is above", id="site"
        ),
        pytest.param(
            {"cameras": {"door": {"unknown_threshold": 0.9}}},
            "cameras.door.unknown_threshold",
            id="camera",
        ),
        pytest.param(
            {"confirm_frames": 3, "confirm_window_frames": 2},
            "confirm_frames 3 is more than",
            id="k-over-n",
        ),
    ],
)
def test_settings_that_contradict_themselves_are_refused(
    attendance: dict[str, Any], named: str
) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings(overrides={"attendance": attendance})


# --- the person ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("person", "code"),
    [
        pytest.param(
            Person("p1", "E1", "A", None, PersonStatus.INACTIVE, NOW),
            ReasonCode.PERSON_INACTIVE,
            id="inactive",
        ),
        pytest.param(
            DatedPerson("p1", "E1", "A", None, PersonStatus.ACTIVE, NOW, NOW.date()),
            None,
            id="valid-from-today",
        ),
        pytest.param(
            DatedPerson(
                "p1", "E1", "A", None, PersonStatus.ACTIVE, NOW, date(2026, 3, 3)
            ),
            ReasonCode.PERSON_NOT_YET_VALID,
            id="valid-from-tomorrow",
        ),
        pytest.param(
            DatedPerson(
                "p1", "E1", "A", None, PersonStatus.ACTIVE, NOW, NOW + timedelta(1e-6)
            ),
            ReasonCode.PERSON_NOT_YET_VALID,
            id="valid-from-later-today",
        ),
        pytest.param(
            DatedPerson(
                "p1", "E1", "A", None, PersonStatus.ACTIVE, NOW, None, NOW.date()
            ),
            None,
            id="valid-until-today",
        ),
        pytest.param(
            DatedPerson(
                "p1", "E1", "A", None, PersonStatus.ACTIVE, NOW, None, date(2026, 3, 1)
            ),
            ReasonCode.PERSON_EXPIRED,
            id="valid-until-yesterday",
        ),
        pytest.param(
            DatedPerson(
                "p1",
                "E1",
                "A",
                None,
                PersonStatus.ACTIVE,
                NOW,
                None,
                NOW - timedelta(seconds=1),
            ),
            ReasonCode.PERSON_EXPIRED,
            id="valid-until-a-second-ago",
        ),
    ],
)
def test_people_are_marked_only_while_active_and_valid(
    person: Person, code: ReasonCode | None
) -> None:
    verdict = judge(_face(("p1", 0.99)), person, _camera(), None, NOW, POLICY)

    if code is None:
        assert verdict.outcome is Outcome.MARKED
    else:
        assert verdict.outcome is Outcome.INACTIVE_PERSON
        assert verdict.code is code


def test_a_date_bound_covers_the_site_local_day() -> None:
    tokyo = AttendancePolicy(0.85, timedelta(minutes=5), ZoneInfo("Asia/Tokyo"))
    # 20:00 UTC on the 2nd is already the 3rd in Tokyo.
    late_utc = datetime(2026, 3, 2, 20, 0, tzinfo=UTC)
    person = DatedPerson(
        "p1", "E1", "A", None, PersonStatus.ACTIVE, NOW, date(2026, 3, 3)
    )

    verdict = judge(_face(("p1", 0.99)), person, _camera(), None, late_utc, tokyo)

    assert verdict.outcome is Outcome.MARKED


def test_on_roll_means_active_and_valid_at_some_time_of_the_day() -> None:
    def dated(start: date | datetime | None, end: date | datetime | None) -> Person:
        return DatedPerson("p1", "E1", "A", None, PersonStatus.ACTIVE, NOW, start, end)

    day = NOW.date()
    evening = datetime(2026, 3, 2, 18, tzinfo=UTC)

    assert on_roll(ALICE, day, UTC_ZONE)
    assert on_roll(dated(evening, None), day, UTC_ZONE)
    assert not on_roll(dated(date(2026, 3, 3), None), day, UTC_ZONE)
    assert not on_roll(dated(None, date(2026, 3, 1)), day, UTC_ZONE)
    assert not on_roll(
        Person("p1", "E1", "A", None, PersonStatus.INACTIVE, NOW), day, UTC_ZONE
    )


# --- duplicates and direction -------------------------------------------------


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
    if outcome is Outcome.DUPLICATE:
        assert verdict.code is ReasonCode.DUPLICATE_WINDOW
        assert "mark 7" in verdict.reason


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


def test_two_way_camera_alternates_within_a_night_shifts_work_day() -> None:
    # Checked in at 22:00 yesterday for a night shift; 06:00 counts for it.
    last = _mark(
        MarkKind.CHECK_IN, timedelta(hours=10, minutes=30), work_day="2026-03-01"
    )

    verdict = judge(
        _face(("p1", 0.95)),
        ALICE,
        _camera(Direction.BOTH),
        last,
        NOW,
        POLICY,
        work_day="2026-03-01",
    )

    assert verdict.mark_kind is MarkKind.CHECK_OUT


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


def test_a_local_day_is_23_hours_long_in_spring_and_25_in_autumn() -> None:
    berlin = ZoneInfo("Europe/Berlin")

    spring = day_bounds(date(2026, 3, 29), berlin)
    autumn = day_bounds(date(2026, 10, 25), berlin)

    assert spring[1] - spring[0] == timedelta(hours=23)
    assert autumn[1] - autumn[0] == timedelta(hours=25)


# --- reviews ------------------------------------------------------------------


def test_a_confirmed_review_marks_with_the_usual_rules() -> None:
    before = _mark(MarkKind.CHECK_IN, timedelta(hours=4))
    near = _mark(MarkKind.CHECK_OUT, timedelta(minutes=-2))
    two_way = _camera(Direction.BOTH)

    marked = judge_reviewed(ALICE, two_way, before, before, NOW, POLICY)
    repeated = judge_reviewed(ALICE, two_way, before, near, NOW, POLICY)
    inactive = judge_reviewed(
        Person("p1", "E1", "A", None, PersonStatus.INACTIVE, NOW),
        two_way,
        None,
        None,
        NOW,
        POLICY,
    )

    assert (marked.outcome, marked.mark_kind) == (Outcome.MARKED, MarkKind.CHECK_OUT)
    assert repeated.code is ReasonCode.DUPLICATE_WINDOW
    assert inactive.code is ReasonCode.PERSON_INACTIVE


# --- multi-frame confirmation -------------------------------------------------


def _history(*shown: tuple[int, bool]) -> list[FrameSighting]:
    """Frames ``seconds`` before NOW that do or do not show p1."""
    return [
        FrameSighting(
            f"f{n}", NOW - timedelta(seconds=s), frozenset({"p1"} if on else ())
        )
        for n, (s, on) in enumerate(shown)
    ]


def test_agreeing_frames_counts_the_last_n_within_the_window() -> None:
    rule = Confirmation(2, 3, timedelta(seconds=10))

    assert (
        agreeing_frames(_history((4, True), (2, False), (0, True)), "p1", NOW, rule)
        == 2
    )
    assert (
        agreeing_frames(_history((30, True), (2, False), (0, True)), "p1", NOW, rule)
        == 1
    )
    assert (
        agreeing_frames(
            _history((3, True), (2, False), (1, False), (0, True)), "p1", NOW, rule
        )
        == 1
    )


def test_multi_frame_confirmation_waits_then_marks() -> None:
    policy = AttendancePolicy(
        0.85, timedelta(minutes=5), UTC_ZONE, confirmation=Confirmation(2, 3)
    )
    face = _face(("p1", 0.95))

    waiting = judge(face, ALICE, _camera(), None, NOW, policy, sightings=1)
    confirmed = judge(face, ALICE, _camera(), None, NOW, policy, sightings=2)

    assert waiting.outcome is Outcome.PENDING_CONFIRMATION
    assert waiting.code is ReasonCode.AWAITING_CONFIRMATION
    assert "1 of the last 3" in waiting.reason
    assert confirmed.outcome is Outcome.MARKED
    assert confirmed.rule is DecisionRule.CONFIRMATION


def test_only_confident_unambiguous_faces_count_for_confirmation() -> None:
    rules = GREY.for_camera("gate")

    assert confident_subject(_face(("p1", 0.9)), rules) == "p1"
    assert confident_subject(_face(("p1", 0.8)), rules) is None
    assert confident_subject(_face(("p1", 0.9), ("p2", 0.88)), rules) is None


# --- refusals -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcome", "reason", "code"),
    [
        pytest.param(Outcome.NO_FACE, "no face", ReasonCode.NO_FACE, id="no-face"),
        pytest.param(
            Outcome.REJECTED, "too_dark", ReasonCode.QUALITY_TOO_DARK, id="dark"
        ),
        pytest.param(
            Outcome.REJECTED, "too_bright", ReasonCode.QUALITY_TOO_BRIGHT, id="bright"
        ),
        pytest.param(
            Outcome.REJECTED, "too_blurry", ReasonCode.QUALITY_TOO_BLURRY, id="blurry"
        ),
        pytest.param(
            Outcome.REJECTED, "too_small", ReasonCode.QUALITY_TOO_SMALL, id="small"
        ),
        pytest.param(
            Outcome.REJECTED,
            "the recognizer refused the frame: bad",
            ReasonCode.RECOGNIZER_REFUSED,
            id="recognizer",
        ),
        pytest.param(
            Outcome.REJECTED,
            "the frame's spool file is missing",
            ReasonCode.FRAME_MISSING,
            id="missing",
        ),
        pytest.param(
            Outcome.REJECTED,
            "the image decodes only in part",
            ReasonCode.FRAME_UNDECODABLE,
            id="partial",
        ),
    ],
)
def test_refused_frames_get_a_code(
    outcome: Outcome, reason: str, code: ReasonCode
) -> None:
    assert refusal_code(outcome, reason)[0] is code


# --- shifts -------------------------------------------------------------------


DAY = _shift(time(9), time(17))
NIGHT = _shift(time(22), time(6))


def _at(day: int, hour: int, minute: int = 0, zone: ZoneInfo = UTC_ZONE) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=zone).astimezone(UTC)


@pytest.mark.parametrize(
    ("kind", "moment", "expected"),
    [
        pytest.param(MarkKind.CHECK_IN, _at(2, 8, 1), MarkClass.ON_TIME, id="in-early"),
        pytest.param(MarkKind.CHECK_IN, _at(2, 9, 5), MarkClass.ON_TIME, id="in-grace"),
        pytest.param(MarkKind.CHECK_IN, _at(2, 9, 6), MarkClass.LATE, id="in-late"),
        pytest.param(
            MarkKind.CHECK_IN, _at(2, 7, 59), MarkClass.OUTSIDE_SHIFT, id="in-too-early"
        ),
        pytest.param(
            MarkKind.CHECK_IN,
            _at(2, 17, 30),
            MarkClass.OUTSIDE_SHIFT,
            id="in-after-end",
        ),
        pytest.param(
            MarkKind.CHECK_OUT, _at(2, 16, 54), MarkClass.EARLY_EXIT, id="out-early"
        ),
        pytest.param(
            MarkKind.CHECK_OUT, _at(2, 16, 55), MarkClass.ON_TIME, id="out-grace"
        ),
        pytest.param(
            MarkKind.CHECK_OUT, _at(2, 19, 0), MarkClass.ON_TIME, id="out-last-minute"
        ),
        pytest.param(
            MarkKind.CHECK_OUT,
            _at(2, 19, 1),
            MarkClass.OUTSIDE_SHIFT,
            id="out-too-late",
        ),
        pytest.param(
            MarkKind.CHECK_OUT, _at(2, 8, 30), MarkClass.OUTSIDE_SHIFT, id="out-before"
        ),
    ],
)
def test_marks_are_classified_against_the_day_shift(
    kind: MarkKind, moment: datetime, expected: MarkClass
) -> None:
    attribution = attribute(moment, _schedule(DAY), UTC_ZONE)

    assert classify(kind, moment, attribution) is expected


def test_a_night_shifts_check_out_counts_for_the_day_it_started() -> None:
    schedule = _schedule(NIGHT)
    check_in, check_out = _at(2, 21, 50), _at(3, 6, 10)

    placed_in = attribute(check_in, schedule, UTC_ZONE)
    placed_out = attribute(check_out, schedule, UTC_ZONE)

    assert placed_in.work_day == placed_out.work_day == date(2026, 3, 2)
    assert classify(MarkKind.CHECK_IN, check_in, placed_in) is MarkClass.ON_TIME
    assert classify(MarkKind.CHECK_OUT, check_out, placed_out) is MarkClass.ON_TIME


def test_an_early_check_in_before_midnight_counts_for_the_next_day() -> None:
    after_midnight = _shift(time(0, 30), time(8, 30))

    placed = attribute(_at(2, 23, 45), _schedule(after_midnight), UTC_ZONE)

    assert placed.work_day == date(2026, 3, 3)


def test_a_shift_runs_only_on_its_days_and_from_its_assignment() -> None:
    weekdays = replace(DAY, days=(0, 1, 2, 3, 4))
    saturday = _at(7, 9)
    schedule = [
        ShiftAssignment("p1", None, date(2026, 1, 1), NOW, "t"),
        ShiftAssignment("p1", weekdays, date(2026, 3, 3), NOW, "t"),
    ]

    assert (
        classify(MarkKind.CHECK_IN, saturday, attribute(saturday, schedule, UTC_ZONE))
        is MarkClass.OUTSIDE_SHIFT
    )
    assert (
        classify(MarkKind.CHECK_IN, NOW, attribute(NOW, schedule, UTC_ZONE))
        is MarkClass.UNSCHEDULED
    )


def test_shift_times_are_wall_clock_across_a_dst_change() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    # Night of 28 to 29 March 2026: clocks jump from 02:00 to 03:00.
    placed = attribute(_at(29, 6, 0, berlin), _schedule(NIGHT), berlin)

    assert placed.occurrence is not None
    assert placed.work_day == date(2026, 3, 28)
    assert placed.occurrence.end - placed.occurrence.start == timedelta(hours=7)


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        pytest.param({"start": time(9), "end": time(9)}, "differ", id="empty"),
        pytest.param({"days": ()}, "weekday", id="no-days"),
        pytest.param(
            {
                "checkin_before": timedelta(hours=8),
                "checkout_after": timedelta(hours=8),
            },
            "23 hours",
            id="window-too-long",
        ),
        pytest.param(
            {"absent_below": timedelta(hours=5)}, "absent threshold", id="thresholds"
        ),
        pytest.param({"late_grace": timedelta(-1)}, "negative", id="negative"),
    ],
)
def test_bad_shift_definitions_are_named(changes: dict[str, Any], problem: str) -> None:
    shift = replace(DAY, **changes)

    assert any(problem in p for p in shift_problems(shift))


def test_a_good_shift_has_no_problems() -> None:
    assert shift_problems(DAY) == []
    assert shift_problems(NIGHT) == []


# --- work days ----------------------------------------------------------------


def _day_mark(
    mark_id: int,
    kind: MarkKind,
    moment: datetime,
    classification: MarkClass = MarkClass.ON_TIME,
    **fields: object,
) -> Mark:
    return Mark(
        mark_id,
        "p1",
        "gate",
        kind,
        moment,
        moment.date().isoformat(),
        0.9,
        mark_id,
        work_day="2026-03-02",
        classification=classification,
        **fields,  # type: ignore[arg-type]
    )


def test_worked_time_pairs_check_ins_with_the_next_check_out() -> None:
    marks = [
        _day_mark(1, MarkKind.CHECK_OUT, _at(2, 7)),  # closes nothing
        _day_mark(2, MarkKind.CHECK_IN, _at(2, 9)),
        _day_mark(3, MarkKind.CHECK_IN, _at(2, 10)),  # still in
        _day_mark(4, MarkKind.CHECK_OUT, _at(2, 12)),
        _day_mark(5, MarkKind.CHECK_IN, _at(2, 13)),
        _day_mark(6, MarkKind.CHECK_OUT, _at(2, 17)),
    ]

    worked = worked_time(list(reversed(marks)))

    assert worked.total == timedelta(hours=7)
    assert not worked.open


@pytest.mark.parametrize(
    ("marks", "status", "flags"),
    [
        pytest.param([], DayStatus.ABSENT, set(), id="no-marks"),
        pytest.param(
            [
                _day_mark(1, MarkKind.CHECK_IN, _at(2, 9)),
                _day_mark(2, MarkKind.CHECK_OUT, _at(2, 17)),
            ],
            DayStatus.PRESENT,
            set(),
            id="full-day",
        ),
        pytest.param(
            [
                _day_mark(1, MarkKind.CHECK_IN, _at(2, 9, 30), MarkClass.LATE),
                _day_mark(2, MarkKind.CHECK_OUT, _at(2, 17)),
            ],
            DayStatus.LATE,
            {"late"},
            id="late",
        ),
        pytest.param(
            [
                _day_mark(1, MarkKind.CHECK_IN, _at(2, 9)),
                _day_mark(2, MarkKind.CHECK_OUT, _at(2, 12), MarkClass.EARLY_EXIT),
            ],
            DayStatus.HALF_DAY,
            {"early_exit"},
            id="half-day",
        ),
        pytest.param(
            [
                _day_mark(1, MarkKind.CHECK_IN, _at(2, 9)),
                _day_mark(2, MarkKind.CHECK_OUT, _at(2, 10), MarkClass.EARLY_EXIT),
            ],
            DayStatus.ABSENT,
            {"early_exit"},
            id="an-hour",
        ),
        pytest.param(
            [_day_mark(1, MarkKind.CHECK_IN, _at(2, 9))],
            DayStatus.PRESENT,
            {"missing_check_out"},
            id="no-check-out",
        ),
        pytest.param(
            [
                _day_mark(1, MarkKind.CHECK_IN, _at(2, 9), source=MarkSource.MANUAL),
                _day_mark(2, MarkKind.CHECK_OUT, _at(2, 17)),
                _day_mark(3, MarkKind.CHECK_OUT, _at(2, 10), voided=True),
            ],
            DayStatus.PRESENT,
            {"manual"},
            id="corrected",
        ),
    ],
)
def test_daily_status_follows_the_shift_thresholds(
    marks: list[Mark], status: DayStatus, flags: set[str]
) -> None:
    row = daily_row(ALICE, date(2026, 3, 2), marks, DAY)

    shown = {
        name
        for name in ("late", "early_exit", "missing_check_out", "manual")
        if getattr(row, name)
    }
    assert row.status is status
    assert shown == flags


def test_a_day_without_shift_or_marks_is_off() -> None:
    row = daily_row(ALICE, date(2026, 3, 2), [], None)

    assert row.status is DayStatus.OFF
    assert not row.scheduled
