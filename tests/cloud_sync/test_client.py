"""The client's pieces that need no server: the retry pause."""

from __future__ import annotations

import random

import pytest

from cloud_sync.client import BACKOFF_CAP_S, backoff


@pytest.mark.parametrize("attempt", [0, 1, 5, 8, 9, 50, 10_000], ids=str)
def test_backoff_stays_within_full_jitter_bounds(attempt: int) -> None:
    rng = random.Random(attempt)
    ceiling = min(BACKOFF_CAP_S, 2.0 ** min(attempt, 32))

    pauses = [backoff(attempt, rng=rng) for _ in range(200)]

    assert all(0 <= p <= ceiling for p in pauses)
    assert max(pauses) > ceiling / 2


def test_backoff_spreads_sites_that_retry_together() -> None:
    rng = random.Random(7)

    pauses = {round(backoff(6, rng=rng), 3) for _ in range(50)}

    assert len(pauses) > 40
