"""Recognition client wrapper: bounded concurrency, retries and a circuit breaker.

:class:`ResilientRecognizer` wraps any :class:`Recognizer` adapter and keeps
its protocol. Each call:

1. asks the :class:`CircuitBreaker` for admission, and fails at once with
   :class:`CircuitOpen` while the breaker is open;
2. waits for one of ``concurrency`` slots, so that a burst of frames cannot
   pile requests onto the service;
3. on a transient failure (``base.is_transient``) tries again after a pause
   drawn uniformly from ``[0, backoff_s * 2**attempt]`` ("full jitter"), up to
   ``retries`` times, so that cameras that failed together do not come back
   together.

What counts against the breaker:

* transient failures (connection, timeout, 408/429/5xx) count; after
  ``breaker_failures`` of them in a row it opens for ``breaker_open_s``, then
  lets one trial call through: success closes it, failure re-opens it;
* a rejected API key (401/403) opens it at once: every call would fail the
  same way, and the pause keeps a misconfigured appliance from sending the
  service a refused request per frame. The reason stays visible in
  ``opened_reason`` and each trial call tries the key again;
* any other answer of the service, including NoFaceFound and other 4xx
  refusals, shows it is up: it counts as a success and is never retried.

Enrollment (``add_example``) is never retried: after a timeout the service
may have stored the example anyway, and at CompreFace a second try would
store it twice. The user sees the 503 and enrolls again.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Literal, TypeVar

from edge_agent.clients.recognition.base import (
    Recognizer,
    RecognizerKeyRejected,
    SubjectExample,
    is_transient,
)
from edge_agent.errors import NoFaceFound, RecognizerUnavailable
from edge_agent.models import RecognizedFace

logger = logging.getLogger(__name__)

T = TypeVar("T")
BreakerState = Literal["closed", "open", "half_open"]

# While the one trial call of a half-open breaker is in flight, other calls
# are told to come back after this long; it usually ends within a call.
_TRIAL_RETRY_AFTER_S = 1.0


class CircuitOpen(RecognizerUnavailable):
    """Calls to the recognizer are paused after repeated failures."""

    def __init__(self, detail: str, *, retry_after_s: float) -> None:
        # Unavailable declares its retry hint per class; an open circuit knows
        # it per instance, and the base class builds Retry-After from it.
        self.retry_after_s = max(1, math.ceil(retry_after_s))  # type: ignore[misc]
        super().__init__(detail)


class CircuitBreaker:
    """Closed -> open after consecutive failures -> half-open -> closed or open.

    ``admit`` returns whether the admitted call is the half-open trial; that
    flag goes back with the call's verdict, so that only calls admitted while
    closed, and the trial, move the breaker.
    """

    def __init__(
        self,
        *,
        failures: int,
        open_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._threshold = failures
        self._open_s = open_s
        self._clock = clock
        self._state: BreakerState = "closed"
        self._opened_at = 0.0
        self._trial_in_flight = False
        self.consecutive_failures = 0
        self.opened_reason: str | None = None

    @property
    def state(self) -> BreakerState:
        """The state now; an open breaker whose time is up reads half-open."""
        if self._state == "open" and self._clock() >= self._opened_at + self._open_s:
            self._state = "half_open"
        return self._state

    def admit(self) -> bool:
        """Let a call through, or raise CircuitOpen; True for the trial call."""
        state = self.state
        if state == "closed":
            return False
        if state == "half_open" and not self._trial_in_flight:
            self._trial_in_flight = True
            return True

        wait = (
            self._opened_at + self._open_s - self._clock()
            if state == "open"
            else _TRIAL_RETRY_AFTER_S
        )
        raise CircuitOpen(
            f"recognizer calls are paused: {self.opened_reason}", retry_after_s=wait
        )

    def succeeded(self, trial: bool) -> None:
        if trial:
            self._trial_in_flight = False
            self._close()
        elif self._state == "closed":
            self.consecutive_failures = 0

    def failed(self, trial: bool, reason: str) -> None:
        if trial:
            self._trial_in_flight = False
            self._open(f"trial call failed: {reason}")
            return
        if self._state != "closed":
            return

        self.consecutive_failures += 1
        if self.consecutive_failures >= self._threshold:
            self._open(f"{self.consecutive_failures} failures in a row: {reason}")

    def trip(self, trial: bool, reason: str) -> None:
        """Open at once: a failure that every call would repeat."""
        if trial:
            self._trial_in_flight = False
        self._open(reason)

    def abandon(self, trial: bool) -> None:
        """The call ended without a verdict (cancelled, or a fault of ours)."""
        if trial:
            self._trial_in_flight = False

    def _open(self, reason: str) -> None:
        self._state = "open"
        self._opened_at = self._clock()
        self.opened_reason = reason
        logger.warning("Recognizer circuit opened for %.1f s: %s", self._open_s, reason)

    def _close(self) -> None:
        self._state = "closed"
        self.consecutive_failures = 0
        self.opened_reason = None
        logger.info("Recognizer circuit closed: the trial call succeeded")


class ResilientRecognizer:
    """A :class:`Recognizer` that bounds, retries and pauses calls to another.

    ``state``, ``opened_reason`` and the counters are for readiness and
    metrics: ``calls`` made to this wrapper, ``failures`` of attempts at the
    service (transient or permanent; NoFaceFound is an answer), ``retries``
    made, ``rejected`` calls failed fast by the open circuit, and
    ``in_flight`` attempts now at the service.
    """

    def __init__(
        self,
        inner: Recognizer,
        *,
        concurrency: int,
        retries: int,
        backoff_s: float,
        breaker_failures: int,
        breaker_open_s: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._inner = inner
        self._slots = asyncio.Semaphore(concurrency)
        self._retries = retries
        self._backoff_s = backoff_s
        self._sleep = sleep
        self._rng = rng
        self.breaker = CircuitBreaker(
            failures=breaker_failures, open_s=breaker_open_s, clock=clock
        )
        self.calls = 0
        self.failures = 0
        self.retries = 0
        self.rejected = 0
        self.in_flight = 0

    @property
    def inner(self) -> Recognizer:
        """The adapter this wrapper guards."""
        return self._inner

    @property
    def state(self) -> BreakerState:
        return self.breaker.state

    @property
    def opened_reason(self) -> str | None:
        return self.breaker.opened_reason

    async def open(self) -> None:
        await self._inner.open()

    async def close(self) -> None:
        await self._inner.close()

    async def recognize(self, image: bytes) -> list[RecognizedFace]:
        return await self._call(lambda: self._inner.recognize(image))

    async def add_example(
        self, subject: str, image: bytes, others: Sequence[bytes] = ()
    ) -> str:
        return await self._call(
            lambda: self._inner.add_example(subject, image, others), retry=False
        )

    async def list_examples(self, subject: str | None = None) -> list[SubjectExample]:
        return await self._call(lambda: self._inner.list_examples(subject))

    async def delete_example(
        self, image_id: str, remaining: Sequence[bytes] = ()
    ) -> None:
        await self._call(lambda: self._inner.delete_example(image_id, remaining))

    async def delete_subject_examples(self, subject: str) -> int:
        return await self._call(lambda: self._inner.delete_subject_examples(subject))

    async def _call(
        self, operation: Callable[[], Awaitable[T]], *, retry: bool = True
    ) -> T:
        self.calls += 1
        attempts = 1 + (self._retries if retry else 0)

        for attempt in range(attempts):
            if attempt:
                await self._pause(attempt - 1)
            try:
                return await self._attempt(operation)
            except RecognizerUnavailable as exc:
                last = attempt + 1 == attempts
                if last or isinstance(exc, CircuitOpen) or not is_transient(exc):
                    raise
                logger.info("Recognizer call failed, retrying: %s", exc)

        raise AssertionError("the loop returns or raises on its last attempt")

    async def _pause(self, attempt: int) -> None:
        # Full jitter: uniform in [0, backoff * 2**attempt].
        self.retries += 1
        await self._sleep(self._rng() * self._backoff_s * 2**attempt)

    async def _attempt(self, operation: Callable[[], Awaitable[T]]) -> T:
        trial = self._admit()

        try:
            async with self._slots:
                result = await self._at_service(operation)
        except NoFaceFound:
            self.breaker.succeeded(trial)
            raise
        except RecognizerUnavailable as exc:
            self._judge(trial, exc)
            raise
        except BaseException:
            # Cancellation and our own faults say nothing about the service.
            self.breaker.abandon(trial)
            raise

        self.breaker.succeeded(trial)
        return result

    def _admit(self) -> bool:
        try:
            return self.breaker.admit()
        except CircuitOpen:
            self.rejected += 1
            raise

    async def _at_service(self, operation: Callable[[], Awaitable[T]]) -> T:
        self.in_flight += 1
        try:
            return await operation()
        finally:
            self.in_flight -= 1

    def _judge(self, trial: bool, exc: RecognizerUnavailable) -> None:
        self.failures += 1
        if isinstance(exc, RecognizerKeyRejected):
            self.breaker.trip(trial, f"the API key was rejected: {exc.detail}")
        elif is_transient(exc):
            self.breaker.failed(trial, exc.detail)
        else:
            self.breaker.succeeded(trial)
