"""Attendance rules, property-based: the duplicate window, check-in/check-out
pairing and shift placement hold for any time, zone and shift, including the
days the clocks change and shifts that cross midnight."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.models import (
    Box,
    Camera,
    Candidate,
    Direction,
    Mark,
    MarkClass,
    MarkKind,
    Outcome,
    Person,
    PersonStatus,
    RecognizedFace,
    Shift,
    ShiftAssignment,
)
from edge_agent.services.rules import (
    MAX_SHIFT_WINDOW,
    AttendancePolicy,
    attribute,
    classify,
    daily_row,
    judge,
    local_day,
    mark_kind,
    occurrence,
    shift_length,
    worked_time,
)

# No example database: the properties must hold on every run, and the test
# run must leave no folder behind.
PROPERTIES = settings(database=None, max_examples=300, deadline=None)

ZONES = [
    ZoneInfo(name)
    for name in ("Europe/Berlin", "America/New_York", "UTC", "Asia/Kolkata")
]
# Spring-forward and fall-back days of 2026 in Berlin and New York, the days
# around them, and a plain day.
DST_DAYS = [
    date(2026, 3, 29),
    date(2026, 10, 25),
    date(2026, 3, 8),
    date(2026, 11, 1),
]
DAYS = [d + timedelta(days=k) for d in DST_DAYS for k in (-1, 0, 1)] + [
    date(2026, 6, 15)
]
# Instants within a day of a clock change in either zone.
TRANSITIONS = [
    datetime(2026, 3, 29, 1, tzinfo=UTC),
    datetime(2026, 10, 25, 1, tzinfo=UTC),
    datetime(2026, 3, 8, 7, tzinfo=UTC),
    datetime(2026, 11, 1, 6, tzinfo=UTC),
]

WINDOW = timedelta(minutes=5)
NOW = datetime(2026, 3, 2, 8, tzinfo=UTC)
ALICE = Person("p1", "E1", "Alice", None, PersonStatus.ACTIVE, NOW)
FACE = RecognizedFace(Box(0, 0, 9, 9, 1.0), (Candidate("p1", 0.97),))

zones = st.sampled_from(ZONES)
kinds = st.sampled_from(list(MarkKind))
near_transitions = st.builds(
    lambda base, offset: base + timedelta(seconds=offset),
    st.sampled_from(TRANSITIONS),
    st.integers(-86_400, 86_400),
)


def _policy(zone: ZoneInfo) -> AttendancePolicy:
    return AttendancePolicy(0.85, WINDOW, zone)


def _mark(kind: MarkKind, at: datetime, work_day: str, mark_id: int = 1) -> Mark:
    return Mark(
        mark_id, "p1", "gate", kind, at, work_day, 0.9, mark_id, work_day=work_day
    )


@st.composite
def shifts(draw: st.DrawFn) -> Shift:
    """Valid shifts: any start, 1 to 12 hours long (crossing midnight or
    not), windows and graces of up to a few hours, the whole under 23 hours."""
    start = time(draw(st.integers(0, 23)), draw(st.sampled_from([0, 15, 30, 45])))
    length = timedelta(minutes=draw(st.integers(60, 12 * 60)))
    end_wall = datetime.combine(date(2026, 1, 1), start) + length
    before = timedelta(minutes=draw(st.integers(0, 180)))
    after = timedelta(minutes=draw(st.integers(0, 180)))
    grace = timedelta(minutes=draw(st.integers(0, 30)))
    shift = Shift(
        name="s",
        days=tuple(sorted(draw(st.sets(st.integers(0, 6), min_size=1)))),
        start=start,
        end=end_wall.time(),
        checkin_before=before,
        checkout_after=after,
        late_grace=grace,
        early_exit_grace=grace,
        half_day_below=timedelta(hours=4),
        absent_below=timedelta(hours=2),
        created_at=NOW,
    )
    window = shift_length(shift) + before + after
    return shift if window < MAX_SHIFT_WINDOW else draw(st.nothing())


def _schedule(shift: Shift) -> list[ShiftAssignment]:
    return [ShiftAssignment("p1", shift, date(2020, 1, 1), NOW, "test")]


# --- the duplicate window -----------------------------------------------------


@PROPERTIES
@given(
    zone=zones,
    last_at=near_transitions,
    offset_ms=st.integers(-2 * 300_000, 2 * 300_000),
)
def test_a_repeat_on_an_entry_camera_is_a_duplicate_iff_within_the_window(
    zone: ZoneInfo, last_at: datetime, offset_ms: int
) -> None:
    policy = _policy(zone)
    now = last_at + timedelta(milliseconds=offset_ms)
    last = _mark(MarkKind.CHECK_IN, last_at, local_day(last_at, policy))
    camera = Camera("gate", "Gate", Direction.ENTRY, NOW)

    verdict = judge(FACE, ALICE, camera, last, now, policy)

    within = abs(now - last_at) < WINDOW
    assert verdict.outcome is (Outcome.DUPLICATE if within else Outcome.MARKED)


@PROPERTIES
@given(
    zone=zones,
    last_kind=kinds,
    last_at=near_transitions,
    offset_ms=st.integers(-2 * 300_000, 2 * 300_000),
)
def test_a_two_way_camera_never_marks_twice_within_the_window(
    zone: ZoneInfo, last_kind: MarkKind, last_at: datetime, offset_ms: int
) -> None:
    policy = _policy(zone)
    now = last_at + timedelta(milliseconds=offset_ms)
    last = _mark(last_kind, last_at, local_day(last_at, policy))
    camera = Camera("door", "Door", Direction.BOTH, NOW)

    verdict = judge(FACE, ALICE, camera, last, now, policy)

    if abs(now - last_at) < WINDOW:
        assert verdict.outcome is Outcome.DUPLICATE
    else:
        assert verdict.outcome is Outcome.MARKED


@PROPERTIES
@given(
    last_at=near_transitions,
    offset_ms=st.integers(-2 * 300_000, 2 * 300_000),
    kind=kinds,
)
def test_the_duplicate_window_does_not_depend_on_the_site_zone(
    last_at: datetime, offset_ms: int, kind: MarkKind
) -> None:
    now = last_at + timedelta(milliseconds=offset_ms)
    direction = Direction.ENTRY if kind is MarkKind.CHECK_IN else Direction.EXIT
    camera = Camera("gate", "Gate", direction, NOW)

    outcomes = set()
    for zone in ZONES:
        policy = _policy(zone)
        last = _mark(kind, last_at, local_day(last_at, policy))
        outcomes.add(judge(FACE, ALICE, camera, last, now, policy).outcome)

    assert len(outcomes) == 1


# --- check-in / check-out pairing ------------------------------------------------


@PROPERTIES
@given(
    zone=zones,
    shift=shifts(),
    day=st.sampled_from(DAYS),
    in_at=st.floats(0, 1),
    out_at=st.floats(0, 1),
)
def test_a_check_in_and_its_check_out_count_for_the_day_the_shift_started(
    zone: ZoneInfo, shift: Shift, day: date, in_at: float, out_at: float
) -> None:
    shift = replace(shift, days=tuple(range(7)))
    found = occurrence(shift, day, zone)
    check_in = found.opens + (found.end - found.opens) * in_at
    check_out = check_in + (found.closes - check_in) * out_at
    schedule = _schedule(shift)

    placed_in = attribute(check_in, schedule, zone)
    placed_out = attribute(check_out, schedule, zone)

    assert placed_in.work_day == placed_out.work_day == day
    marks = [
        _mark(MarkKind.CHECK_IN, check_in, day.isoformat(), 1),
        _mark(MarkKind.CHECK_OUT, check_out, day.isoformat(), 2),
    ]
    worked = worked_time(marks)
    assert worked.total == check_out - check_in
    assert not worked.open
    row = daily_row(ALICE, day, marks, shift)
    assert (row.first_in, row.last_out) == (check_in, check_out)


@PROPERTIES
@given(
    zone=zones,
    shift=shifts(),
    day=st.sampled_from(DAYS),
    in_at=st.floats(0, 1),
    out_at=st.floats(0, 1),
)
def test_a_two_way_camera_checks_out_within_the_shift_across_midnight_too(
    zone: ZoneInfo, shift: Shift, day: date, in_at: float, out_at: float
) -> None:
    shift = replace(shift, days=tuple(range(7)))
    found = occurrence(shift, day, zone)
    check_in = found.opens + (found.end - found.opens) * in_at
    check_out = check_in + WINDOW + (found.closes - check_in - WINDOW) * out_at
    policy = _policy(zone)
    first = _mark(MarkKind.CHECK_IN, check_in, day.isoformat())
    work_day = attribute(check_out, _schedule(shift), zone).work_day.isoformat()

    kind = mark_kind(Direction.BOTH, first, check_out, policy, work_day)

    if check_out <= found.closes:
        assert kind is MarkKind.CHECK_OUT


@PROPERTIES
@given(zone=zones, shift=shifts(), day=st.sampled_from(DAYS), at=st.floats(0, 1))
def test_check_ins_are_on_time_within_the_grace_and_late_after_it(
    zone: ZoneInfo, shift: Shift, day: date, at: float
) -> None:
    shift = replace(shift, days=tuple(range(7)))
    found = occurrence(shift, day, zone)
    moment = found.opens + (found.end - found.opens) * at
    if moment >= found.end:
        return

    got = classify(MarkKind.CHECK_IN, moment, attribute(moment, _schedule(shift), zone))

    on_time = moment <= found.start + shift.late_grace
    assert got is (MarkClass.ON_TIME if on_time else MarkClass.LATE)


@PROPERTIES
@given(zone=zones, shift=shifts(), day=st.sampled_from(DAYS), at=st.floats(0, 1))
def test_check_outs_are_early_before_the_grace_and_on_time_after_it(
    zone: ZoneInfo, shift: Shift, day: date, at: float
) -> None:
    shift = replace(shift, days=tuple(range(7)))
    found = occurrence(shift, day, zone)
    moment = found.start + (found.closes - found.start) * at

    got = classify(
        MarkKind.CHECK_OUT, moment, attribute(moment, _schedule(shift), zone)
    )

    early = moment < found.end - shift.early_exit_grace
    assert got is (MarkClass.EARLY_EXIT if early else MarkClass.ON_TIME)


# --- shift placement -----------------------------------------------------------------


@PROPERTIES
@given(zone=zones, shift=shifts(), moment=near_transitions)
def test_a_moment_is_placed_in_a_window_that_holds_it_or_in_its_calendar_day(
    zone: ZoneInfo, shift: Shift, moment: datetime
) -> None:
    placed = attribute(moment, _schedule(shift), zone)

    calendar_day = moment.astimezone(zone).date()
    found = placed.occurrence
    if found is None:
        assert placed.work_day == calendar_day
        return
    assert found.opens <= moment <= found.closes
    assert found.day == placed.work_day
    assert found.day.weekday() in shift.days
    assert abs((placed.work_day - calendar_day).days) <= 1


@PROPERTIES
@given(zone=zones, shift=shifts(), day=st.sampled_from(DAYS))
def test_a_shift_lasts_its_wall_clock_length_give_or_take_the_clock_change(
    zone: ZoneInfo, shift: Shift, day: date
) -> None:
    found = occurrence(shift, day, zone)

    change = found.end.astimezone(zone).utcoffset() or timedelta(0)
    change -= found.start.astimezone(zone).utcoffset() or timedelta(0)
    length = found.end - found.start
    assert abs(length - shift_length(shift)) <= timedelta(hours=1)
    if not _in_a_gap(shift, day, zone):
        assert found.start.astimezone(zone).time() == shift.start
        assert found.end.astimezone(zone).time() == shift.end
        assert length == shift_length(shift) - change


@PROPERTIES
@given(
    moments=st.lists(st.tuples(kinds, near_transitions), min_size=0, max_size=12),
    seed=st.integers(0, 1000),
)
def test_worked_time_is_bounded_and_ignores_the_order_marks_come_in(
    moments: list[tuple[MarkKind, datetime]], seed: int
) -> None:
    marks = [_mark(kind, at, "2026-03-29", n) for n, (kind, at) in enumerate(moments)]
    shuffled = marks[:]
    random.Random(seed).shuffle(shuffled)

    worked = worked_time(marks)

    assert worked == worked_time(shuffled)
    assert worked.total >= timedelta(0)
    if marks:
        times = [m.marked_at for m in marks]
        assert worked.total <= max(times) - min(times)


def _in_a_gap(shift: Shift, day: date, zone: ZoneInfo) -> bool:
    """Whether the shift's start or end wall time does not exist that day."""
    end_day = day + timedelta(days=1) if shift.crosses_midnight else day
    for wall in (
        datetime.combine(day, shift.start),
        datetime.combine(end_day, shift.end),
    ):
        local = wall.replace(tzinfo=zone)
        if local.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != wall:
            return True
    return False
