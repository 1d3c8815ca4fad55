"""Camera activity service: what each camera did lately, kept in memory only.

Ingestion reports each accepted and refused frame, stream readers each
reconnect, the health monitor each probe. Per camera the tracker keeps one
bucket per minute for the last hour, the times of the last hour's gaps and
reconnects (bounded), and the latest frame, probe and error, so its memory
per camera is fixed however busy the camera is. Only cameras that exist are
reported (ingestion resolves the camera first), so the number of cameras is
bounded by the registry.

The connection-quality grade counts gaps (two frames further apart than twice
the camera's expected interval) and reconnects in the last hour:

============  ================================
excellent     none
fair          1 or 2
poor          3 to 9
unusable      10 or more
============  ================================

A camera that is simply silent has no gaps until its next frame arrives; the
health monitor's offline state says that, the grade does not.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from edge_agent.clock import Clock, to_text

_HOUR = timedelta(hours=1)
_MINUTES = 60
# Bounds the per-camera record of gaps and reconnects: past this many in an
# hour the grade is long since "unusable", and older entries add nothing.
_MAX_INCIDENTS = 256
_MAX_ERROR_CHARS = 300
# Incidents per hour at or above which a grade applies, best grade last.
_GRADES = ((10, "unusable"), (3, "poor"), (1, "fair"))


class Grade(enum.StrEnum):
    EXCELLENT = "excellent"
    FAIR = "fair"
    POOR = "poor"
    UNUSABLE = "unusable"


def grade_for(incidents_per_hour: int) -> Grade:
    """The grade of a camera with this many gaps and reconnects in an hour."""
    for floor, grade in _GRADES:
        if incidents_per_hour >= floor:
            return Grade(grade)
    return Grade.EXCELLENT


@dataclass(slots=True)
class _Bucket:
    minute: int
    accepted: int = 0
    refused: int = 0


@dataclass(slots=True)
class _Track:
    buckets: deque[_Bucket] = field(default_factory=lambda: deque(maxlen=_MINUTES))
    gaps: deque[datetime] = field(default_factory=lambda: deque(maxlen=_MAX_INCIDENTS))
    reconnects: deque[datetime] = field(
        default_factory=lambda: deque(maxlen=_MAX_INCIDENTS)
    )
    last_frame_at: datetime | None = None
    last_probe_ok_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ActivitySnapshot:
    """One camera's activity as of ``at``."""

    at: datetime
    accepted_last_minute: int
    refused_last_minute: int
    accepted_last_hour: int
    refused_last_hour: int
    gaps_last_hour: int
    reconnects_last_hour: int
    last_frame_at: datetime | None
    last_probe_ok_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None

    @property
    def grade(self) -> Grade:
        return grade_for(self.gaps_last_hour + self.reconnects_last_hour)

    def as_json(self) -> dict[str, Any]:
        """The counters as the health table and the status views keep them."""
        return {
            "accepted_last_minute": self.accepted_last_minute,
            "refused_last_minute": self.refused_last_minute,
            "accepted_last_hour": self.accepted_last_hour,
            "refused_last_hour": self.refused_last_hour,
            "gaps_last_hour": self.gaps_last_hour,
            "reconnects_last_hour": self.reconnects_last_hour,
            "grade": self.grade.value,
            "last_error_at": _text(self.last_error_at),
        }


class CameraActivity:
    """The in-memory activity of every camera that reported any.

    ``default_interval_s`` is the expected interval of a camera registered
    without its own (0: gaps are not counted for such cameras).
    """

    def __init__(self, clock: Clock, default_interval_s: float = 0.0) -> None:
        self._clock = clock
        self._default_interval_s = default_interval_s
        self._tracks: dict[str, _Track] = {}

    def frame_accepted(
        self,
        camera_id: str,
        at: datetime | None = None,
        expected_interval_s: float | None = None,
    ) -> None:
        """Count a frame; a silence before it longer than two intervals is a gap."""
        at = at or self._clock.now()
        track = self._track(camera_id)
        interval = self._interval(expected_interval_s)
        previous = track.last_frame_at
        silence = None if previous is None else (at - previous).total_seconds()
        if silence is not None and interval > 0 and silence > 2 * interval:
            track.gaps.append(at)
        if previous is None or at > previous:
            track.last_frame_at = at
        self._bucket(track, at).accepted += 1

    def frame_refused(
        self, camera_id: str, error: str, at: datetime | None = None
    ) -> None:
        at = at or self._clock.now()
        track = self._track(camera_id)
        self._bucket(track, at).refused += 1
        self._note_error(track, error, at)

    def stream_reconnected(self, camera_id: str, at: datetime | None = None) -> None:
        self._track(camera_id).reconnects.append(at or self._clock.now())

    def probe_succeeded(self, camera_id: str, at: datetime | None = None) -> None:
        self._track(camera_id).last_probe_ok_at = at or self._clock.now()

    def probe_failed(
        self, camera_id: str, error: str, at: datetime | None = None
    ) -> None:
        self._note_error(self._track(camera_id), error, at or self._clock.now())

    def seed(
        self,
        camera_id: str,
        last_frame_at: datetime | None,
        last_probe_ok_at: datetime | None = None,
    ) -> None:
        """Start from the last frame and probe known from before a restart."""
        track = self._track(camera_id)
        if track.last_frame_at is None:
            track.last_frame_at = last_frame_at
        if track.last_probe_ok_at is None:
            track.last_probe_ok_at = last_probe_ok_at

    def snapshot(self, camera_id: str, at: datetime | None = None) -> ActivitySnapshot:
        """The camera's counters as of ``at`` (default: now)."""
        at = at or self._clock.now()
        track = self._tracks.get(camera_id) or _Track()
        minute = _minute(at)
        return ActivitySnapshot(
            at=at,
            accepted_last_minute=_last_minute(track, at, "accepted"),
            refused_last_minute=_last_minute(track, at, "refused"),
            accepted_last_hour=_last_hour(track, minute, "accepted"),
            refused_last_hour=_last_hour(track, minute, "refused"),
            gaps_last_hour=_recent(track.gaps, at),
            reconnects_last_hour=_recent(track.reconnects, at),
            last_frame_at=track.last_frame_at,
            last_probe_ok_at=track.last_probe_ok_at,
            last_error=track.last_error,
            last_error_at=track.last_error_at,
        )

    def _track(self, camera_id: str) -> _Track:
        track = self._tracks.get(camera_id)
        if track is None:
            track = self._tracks[camera_id] = _Track()
        return track

    def _interval(self, expected_interval_s: float | None) -> float:
        if expected_interval_s is None:
            return self._default_interval_s
        return expected_interval_s

    def _bucket(self, track: _Track, at: datetime) -> _Bucket:
        minute = _minute(at)
        if track.buckets and track.buckets[-1].minute == minute:
            return track.buckets[-1]
        for bucket in track.buckets:
            if bucket.minute == minute:
                # A report older than the newest (a slow request finishing
                # late) still lands in its own minute.
                return bucket
        bucket = _Bucket(minute)
        # An out-of-order minute that is no longer kept is not counted.
        if not track.buckets or track.buckets[-1].minute < minute:
            track.buckets.append(bucket)
        return bucket

    def _note_error(self, track: _Track, error: str, at: datetime) -> None:
        track.last_error = error[:_MAX_ERROR_CHARS]
        track.last_error_at = at


def _minute(at: datetime) -> int:
    return int(at.timestamp() // 60)


def _last_minute(track: _Track, at: datetime, counter: str) -> int:
    """The 60 seconds before ``at``: this minute's bucket, plus the share of
    the previous minute's bucket that still falls within them."""
    minute = _minute(at)
    elapsed = (at.timestamp() % 60) / 60
    total = 0.0
    for bucket in track.buckets:
        if bucket.minute == minute:
            total += getattr(bucket, counter)
        elif bucket.minute == minute - 1:
            total += getattr(bucket, counter) * (1 - elapsed)
    return round(total)


def _last_hour(track: _Track, minute: int, counter: str) -> int:
    return sum(
        getattr(bucket, counter)
        for bucket in track.buckets
        if minute - _MINUTES < bucket.minute <= minute
    )


def _recent(times: deque[datetime], at: datetime) -> int:
    return sum(1 for moment in times if at - _HOUR < moment <= at)


def _text(moment: datetime | None) -> str | None:
    return None if moment is None else to_text(moment)
