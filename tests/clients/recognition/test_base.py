"""The recognizer error contract and candidate merging shared by every adapter."""

from __future__ import annotations

import pytest

from edge_agent.clients.recognition.base import (
    RecognizerCallFailed,
    RecognizerKeyRejected,
    failure_for_status,
    is_transient,
    merge_candidates,
)
from edge_agent.errors import NoFaceFound, RecognizerUnavailable
from edge_agent.models import Candidate


@pytest.mark.parametrize(
    ("status", "transient"),
    [
        *[(status, True) for status in (500, 502, 503, 504, 408, 429)],
        *[(status, False) for status in (400, 404, 413, 422)],
    ],
    ids=lambda value: str(value),
)
def test_statuses_are_transient_or_permanent(status: int, transient: bool) -> None:
    failure = failure_for_status(status, "message")

    assert failure.transient is transient
    assert failure.http_status == status
    assert is_transient(failure) is transient
    assert f"HTTP {status}" in failure.detail


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_key_is_its_own_permanent_failure(status: int) -> None:
    failure = failure_for_status(status, "The x-api-key header is not valid")

    assert isinstance(failure, RecognizerKeyRejected)
    assert not failure.transient


def test_a_long_message_is_cut_short() -> None:
    failure = failure_for_status(500, "x" * 5000)

    assert len(failure.detail) < 300


def test_failures_are_still_recognizer_unavailable_with_a_503() -> None:
    failure = RecognizerCallFailed("down", transient=True)

    assert isinstance(failure, RecognizerUnavailable)
    assert failure.status == 503
    assert "Retry-After" in failure.headers


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (RecognizerUnavailable("down"), True),
        (NoFaceFound("no face"), False),
        (ValueError("bug"), False),
    ],
    ids=["plain-unavailable", "no-face", "other"],
)
def test_errors_that_do_not_say_are_judged_by_their_kind(
    error: Exception, transient: bool
) -> None:
    assert is_transient(error) is transient


def test_candidates_merge_to_the_best_of_each_subject() -> None:
    merged = merge_candidates(
        [
            Candidate("alice", 0.91),
            Candidate("bob", 0.40),
            Candidate("alice", 0.97),
            Candidate("bob", 0.55),
        ]
    )

    assert merged == (Candidate("alice", 0.97), Candidate("bob", 0.55))
    assert merge_candidates([]) == ()
