"""One face.unknown per camera per interval, each saying what it stands for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from edge_agent.services.events import UnknownFaceThrottle

START = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return START + timedelta(seconds=seconds)


def test_a_lingering_stranger_is_one_event_per_interval_per_camera() -> None:
    throttle = UnknownFaceThrottle(timedelta(seconds=10))

    admitted = [throttle.admit("gate", at(s)) for s in (0, 2, 4, 9.9, 10, 11)]
    other = throttle.admit("lobby", at(3))

    assert admitted == [0, None, None, None, 3, None]
    assert other == 0


def test_a_zero_interval_admits_every_unknown_face() -> None:
    throttle = UnknownFaceThrottle(timedelta(0))

    assert [throttle.admit("gate", at(0)) for _ in range(3)] == [0, 0, 0]


def test_capture_times_out_of_order_do_not_reopen_the_window() -> None:
    throttle = UnknownFaceThrottle(timedelta(seconds=10))

    assert throttle.admit("gate", at(20)) == 0
    assert throttle.admit("gate", at(15)) is None
    assert throttle.admit("gate", at(31)) == 1
