"""Multi-frame confirmation: what each camera's recent frames showed. Service layer.

Kept in memory, per camera, as the last frames the attendance service decided
(at most the largest window any camera needs). A restart forgets it: the
first frames after a start must agree again before anyone is marked, which
delays a mark by a few frames and loses none.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime

from edge_agent.services.rules import FrameSighting

# Frames remembered per camera when no window needs more.
_DEFAULT_DEPTH = 100


class ConfirmationTracker:
    """The recent sightings of each camera, oldest first."""

    def __init__(self, depth: int = _DEFAULT_DEPTH) -> None:
        self._depth = depth
        self._cameras: dict[str, deque[FrameSighting]] = {}

    def observe(
        self,
        camera_id: str,
        frame_id: str,
        captured_at: datetime,
        subjects: frozenset[str],
    ) -> list[FrameSighting]:
        """Remember whom a frame showed; return the camera's history with it.

        A frame seen again (a batch retried after a failed commit) replaces
        its earlier sighting instead of counting twice.
        """
        history = self._cameras.setdefault(camera_id, deque(maxlen=self._depth))
        for sighting in history:
            if sighting.frame_id == frame_id:
                history.remove(sighting)
                break
        history.append(FrameSighting(frame_id, captured_at, subjects))
        return list(history)
