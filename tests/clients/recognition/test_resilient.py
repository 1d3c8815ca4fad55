"""Resilient recognizer: bounded concurrency, retries and the circuit breaker.

The breaker and the retry pauses run on an injected clock, sleep and random
source, so no test here waits for real beyond a few milliseconds; the tests
at the end run against the reference server over loopback HTTP.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from edge_agent.clients.recognition.base import (
    RecognizerCallFailed,
    RecognizerKeyRejected,
    SubjectExample,
)
from edge_agent.clients.recognition.compreface import CompreFaceClient
from edge_agent.clients.recognition.resilient import CircuitOpen, ResilientRecognizer
from edge_agent.errors import NoFaceFound, RecognizerUnavailable
from edge_agent.models import RecognizedFace
from tests.clients.recognition.support import KEY, Reference, enrollment_jpeg

OPEN_S = 15.0


def transient() -> RecognizerCallFailed:
    return RecognizerCallFailed("recognizer answered HTTP 503", transient=True)


def refused() -> RecognizerCallFailed:
    return RecognizerCallFailed("recognizer answered HTTP 400", transient=False)


def key_rejected() -> RecognizerKeyRejected:
    return RecognizerKeyRejected("recognizer answered HTTP 401", http_status=401)


@dataclass
class ScriptedRecognizer:
    """A recognizer whose calls raise the scripted errors in turn, then succeed."""

    script: list[BaseException] = field(default_factory=list)
    calls: int = 0
    gate: asyncio.Event | None = None
    opened: bool = False

    async def _next(self) -> None:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.script:
            raise self.script.pop(0)

    async def open(self) -> None:
        self.opened = True

    async def close(self) -> None:
        self.opened = False

    async def recognize(self, image: bytes) -> list[RecognizedFace]:
        await self._next()
        return []

    async def add_example(
        self, subject: str, image: bytes, others: Sequence[bytes] = ()
    ) -> str:
        await self._next()
        return f"{subject}-{len(others)}"

    async def list_examples(self, subject: str | None = None) -> list[SubjectExample]:
        await self._next()
        return []

    async def delete_example(
        self, image_id: str, remaining: Sequence[bytes] = ()
    ) -> None:
        await self._next()

    async def delete_subject_examples(self, subject: str) -> int:
        await self._next()
        return 0


class FakeClock:
    """Monotonic seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Sleeps:
    """Records the pauses asked for instead of sleeping."""

    delays: list[float] = field(default_factory=list)

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


@dataclass
class Harness:
    inner: ScriptedRecognizer
    clock: FakeClock
    sleeps: Sleeps
    make: Callable[..., ResilientRecognizer]

    def wrapper(self, **overrides: Any) -> ResilientRecognizer:
        return self.make(**overrides)


@pytest.fixture
def harness() -> Harness:
    """A scripted inner recognizer with a fake clock, sleep and random source."""
    inner, clock, sleeps = ScriptedRecognizer(), FakeClock(), Sleeps()

    def make(**overrides: Any) -> ResilientRecognizer:
        options: dict[str, Any] = {
            "concurrency": 4,
            "retries": 2,
            "backoff_s": 0.2,
            "breaker_failures": 3,
            "breaker_open_s": OPEN_S,
            "clock": clock,
            "sleep": sleeps,
            "rng": lambda: 0.5,
        }
        return ResilientRecognizer(inner, **(options | overrides))

    return Harness(inner, clock, sleeps, make)


async def test_a_transient_failure_is_retried_until_it_succeeds(
    harness: Harness,
) -> None:
    harness.inner.script = [transient(), transient()]
    recognizer = harness.wrapper()

    assert await recognizer.recognize(b"frame") == []

    assert harness.inner.calls == 3
    assert (recognizer.calls, recognizer.failures, recognizer.retries) == (1, 2, 2)
    assert recognizer.state == "closed"


async def test_the_last_transient_failure_is_raised_after_the_retries(
    harness: Harness,
) -> None:
    harness.inner.script = [transient(), transient(), transient()]
    recognizer = harness.wrapper(breaker_failures=10)

    with pytest.raises(RecognizerCallFailed):
        await recognizer.list_examples()

    assert harness.inner.calls == 3


@pytest.mark.parametrize(
    ("rng_value", "expected"),
    [(0.0, [0.0, 0.0, 0.0]), (0.5, [0.1, 0.2, 0.4]), (0.999, [0.1998, 0.3996, 0.7992])],
    ids=["low", "middle", "high"],
)
async def test_pauses_are_full_jitter_of_an_exponential_backoff(
    harness: Harness, rng_value: float, expected: list[float]
) -> None:
    harness.inner.script = [transient() for _ in range(3)]
    recognizer = harness.wrapper(retries=3, breaker_failures=10, rng=lambda: rng_value)

    await recognizer.recognize(b"frame")

    assert harness.sleeps.delays == pytest.approx(expected)


async def test_pauses_with_a_real_random_source_stay_in_bounds(
    harness: Harness,
) -> None:
    harness.inner.script = [transient() for _ in range(6)]
    recognizer = harness.wrapper(
        retries=6, breaker_failures=10, rng=random.Random(7).random
    )

    await recognizer.recognize(b"frame")

    for attempt, delay in enumerate(harness.sleeps.delays):
        assert 0.0 <= delay <= 0.2 * 2**attempt


@pytest.mark.parametrize(
    "error",
    [NoFaceFound("no face"), refused(), key_rejected()],
    ids=["no-face", "refused-request", "rejected-key"],
)
async def test_answers_and_permanent_failures_are_not_retried(
    harness: Harness, error: Exception
) -> None:
    harness.inner.script = [error]
    recognizer = harness.wrapper()

    with pytest.raises(type(error)):
        await recognizer.recognize(b"frame")

    assert harness.inner.calls == 1
    assert harness.sleeps.delays == []


async def test_enrollment_is_not_retried(harness: Harness) -> None:
    harness.inner.script = [transient()]
    recognizer = harness.wrapper()

    with pytest.raises(RecognizerCallFailed):
        await recognizer.add_example("alice", b"face", others=[b"older"])

    assert harness.inner.calls == 1
    assert await recognizer.add_example("alice", b"face", others=[b"older"]) == (
        "alice-1"
    )


async def test_no_face_and_refusals_do_not_count_against_the_breaker(
    harness: Harness,
) -> None:
    harness.inner.script = [NoFaceFound("no face"), refused()] * 3
    recognizer = harness.wrapper(breaker_failures=2)

    for _ in range(6):
        with pytest.raises((NoFaceFound, RecognizerCallFailed)):
            await recognizer.recognize(b"frame")

    assert recognizer.state == "closed"
    assert recognizer.failures == 3  # the refusals; NoFaceFound is an answer


async def test_the_breaker_opens_after_consecutive_transient_failures(
    harness: Harness,
) -> None:
    harness.inner.script = [transient() for _ in range(3)]
    recognizer = harness.wrapper(retries=0)

    for _ in range(3):
        with pytest.raises(RecognizerCallFailed):
            await recognizer.recognize(b"frame")
    with pytest.raises(CircuitOpen) as paused:
        await recognizer.recognize(b"frame")

    assert recognizer.state == "open"
    assert recognizer.opened_reason is not None
    assert "3 failures in a row" in recognizer.opened_reason
    assert harness.inner.calls == 3
    assert recognizer.rejected == 1
    assert paused.value.retry_after_s == OPEN_S
    assert paused.value.headers["Retry-After"] == "15"


async def test_a_success_resets_the_count_of_failures(harness: Harness) -> None:
    harness.inner.script = [transient(), transient()]
    recognizer = harness.wrapper(retries=0)
    for _ in range(2):
        with pytest.raises(RecognizerCallFailed):
            await recognizer.recognize(b"frame")

    await recognizer.recognize(b"frame")
    harness.inner.script = [transient(), transient()]
    for _ in range(2):
        with pytest.raises(RecognizerCallFailed):
            await recognizer.recognize(b"frame")

    assert recognizer.state == "closed"


async def test_retries_stop_when_the_breaker_opens(harness: Harness) -> None:
    harness.inner.script = [transient() for _ in range(5)]
    recognizer = harness.wrapper(retries=5, breaker_failures=2)

    with pytest.raises(CircuitOpen):
        await recognizer.recognize(b"frame")

    assert harness.inner.calls == 2


async def _open_breaker(harness: Harness) -> ResilientRecognizer:
    harness.inner.script = [transient() for _ in range(3)]
    recognizer = harness.wrapper(retries=0)
    for _ in range(3):
        with pytest.raises(RecognizerCallFailed):
            await recognizer.recognize(b"frame")
    assert recognizer.state == "open"
    return recognizer


async def test_an_open_breaker_fails_fast_until_its_time_is_up(
    harness: Harness,
) -> None:
    recognizer = await _open_breaker(harness)

    harness.clock.now += 10
    with pytest.raises(CircuitOpen) as paused:
        await recognizer.list_examples()

    assert paused.value.retry_after_s == 5
    assert harness.inner.calls == 3
    assert recognizer.state == "open"


async def test_a_successful_trial_call_closes_the_breaker(harness: Harness) -> None:
    recognizer = await _open_breaker(harness)

    harness.clock.now += OPEN_S
    waiting = recognizer.state
    await recognizer.recognize(b"frame")

    assert waiting == "half_open"
    assert recognizer.state == "closed"
    assert recognizer.opened_reason is None


async def test_a_failed_trial_call_opens_the_breaker_again(
    harness: Harness,
) -> None:
    recognizer = await _open_breaker(harness)

    harness.clock.now += OPEN_S
    harness.inner.script = [transient()]
    with pytest.raises(RecognizerCallFailed):
        await recognizer.recognize(b"frame")

    assert recognizer.state == "open"
    assert recognizer.opened_reason is not None
    assert recognizer.opened_reason.startswith("trial call failed")
    with pytest.raises(CircuitOpen) as paused:
        await recognizer.recognize(b"frame")
    assert paused.value.retry_after_s == OPEN_S


async def test_only_one_trial_call_goes_through_at_a_time(
    harness: Harness,
) -> None:
    recognizer = await _open_breaker(harness)
    harness.clock.now += OPEN_S
    harness.inner.gate = asyncio.Event()

    trial = asyncio.create_task(recognizer.recognize(b"frame"), name="trial")
    await asyncio.sleep(0)
    with pytest.raises(CircuitOpen) as paused:
        await recognizer.recognize(b"frame")
    harness.inner.gate.set()
    await trial

    assert paused.value.retry_after_s == 1
    assert recognizer.state == "closed"


async def test_a_cancelled_trial_call_lets_another_try(harness: Harness) -> None:
    recognizer = await _open_breaker(harness)
    harness.clock.now += OPEN_S
    harness.inner.gate = asyncio.Event()

    trial = asyncio.create_task(recognizer.recognize(b"frame"), name="trial")
    await asyncio.sleep(0)
    trial.cancel()
    with pytest.raises(asyncio.CancelledError):
        await trial
    harness.inner.gate = None
    await recognizer.recognize(b"frame")

    assert recognizer.state == "closed"


async def test_cancellation_is_never_swallowed(harness: Harness) -> None:
    harness.inner.script = [asyncio.CancelledError()]
    recognizer = harness.wrapper()

    with pytest.raises(asyncio.CancelledError):
        await recognizer.recognize(b"frame")

    assert harness.inner.calls == 1
    assert recognizer.state == "closed"


async def test_a_rejected_key_opens_the_breaker_at_once(harness: Harness) -> None:
    harness.inner.script = [key_rejected(), key_rejected()]
    recognizer = harness.wrapper()

    with pytest.raises(RecognizerKeyRejected):
        await recognizer.recognize(b"frame")
    with pytest.raises(CircuitOpen):
        await recognizer.recognize(b"frame")
    harness.clock.now += OPEN_S
    with pytest.raises(RecognizerKeyRejected):
        await recognizer.recognize(b"frame")  # the trial tries the key again

    assert harness.inner.calls == 2
    assert recognizer.state == "open"
    assert recognizer.opened_reason is not None
    assert "API key was rejected" in recognizer.opened_reason


async def test_an_adapter_error_that_does_not_say_is_taken_as_transient(
    harness: Harness,
) -> None:
    harness.inner.script = [RecognizerUnavailable("down")]
    recognizer = harness.wrapper()

    await recognizer.recognize(b"frame")

    assert harness.inner.calls == 2


async def test_the_lifecycle_and_every_method_reach_the_inner_recognizer(
    harness: Harness,
) -> None:
    recognizer = harness.wrapper()

    await recognizer.open()
    opened = harness.inner.opened
    await recognizer.list_examples("alice")
    await recognizer.delete_example("alice-1", remaining=[b"kept"])
    assert await recognizer.delete_subject_examples("alice") == 0
    await recognizer.close()

    assert opened
    assert not harness.inner.opened
    assert harness.inner.calls == 3
    assert recognizer.calls == 3


# Against the reference server -------------------------------------------


@pytest.fixture
async def client(reference: Reference) -> AsyncIterator[CompreFaceClient]:
    """A CompreFace client of the ``reference`` server with a pool of 16."""
    adapter = CompreFaceClient(reference.url, KEY, timeout_s=5, pool_size=16)
    await adapter.open()
    yield adapter
    await adapter.close()


def _wrap(client: CompreFaceClient, **overrides: Any) -> ResilientRecognizer:
    options: dict[str, Any] = {
        "concurrency": 2,
        "retries": 2,
        "backoff_s": 0.001,
        "breaker_failures": 3,
        "breaker_open_s": OPEN_S,
    }
    return ResilientRecognizer(client, **(options | overrides))


async def test_no_more_calls_than_the_concurrency_reach_the_server(
    reference: Reference, client: CompreFaceClient
) -> None:
    recognizer = _wrap(client, concurrency=2)
    reference.faults.update({"delay_s": 0.03})

    async with asyncio.TaskGroup() as group:
        for number in range(6):
            group.create_task(recognizer.list_examples(), name=f"list-{number}")

    assert reference.faults.requests == 6
    assert reference.faults.max_in_flight == 2
    assert recognizer.in_flight == 0


async def test_two_injected_failures_are_retried_away(
    reference: Reference, client: CompreFaceClient
) -> None:
    recognizer = _wrap(client)
    reference.faults.update({"fail_next": 2, "status": 503})

    faces = await recognizer.recognize(enrollment_jpeg("alice"))

    assert len(faces) == 1
    assert reference.faults.requests == 3
    assert recognizer.retries == 2


async def test_a_wrong_key_reaches_the_server_once(reference: Reference) -> None:
    adapter = CompreFaceClient(reference.url, "not-the-key")
    await adapter.open()
    recognizer = _wrap(adapter)

    with pytest.raises(RecognizerKeyRejected):
        await recognizer.recognize(enrollment_jpeg("alice"))
    for _ in range(3):
        with pytest.raises(CircuitOpen):
            await recognizer.recognize(enrollment_jpeg("alice"))
    await adapter.close()

    assert reference.faults.requests == 1
    assert recognizer.failures == 1
    assert recognizer.rejected == 3
    assert recognizer.state == "open"
