"""Event service: the outbox's events delivered to every sink, at least once.

Each sink has its own worker and its own cursor (``sink:<name>``), so a sink
that is down holds back only itself. A worker reads the events after its
cursor in order and hands them over one at a time; the cursor moves only
after the sink took the event, so a crash or a restart delivers it again
rather than never (receivers de-duplicate on the event id). A failed event is
retried, the same one, after a jittered exponential backoff ("full jitter":
a uniform delay up to ``min(cap, base * 2**n)``), which keeps the order per
sink; after ``max_attempts`` failures, or at once for a failure the sink calls
permanent, it becomes a dead letter and the worker goes on. Dead letters an
admin re-drives are delivered before new events.

:class:`EventService` is the read and re-drive side, for the API and the CLI.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from cloud_sync.client import backoff
from edge_agent.clients.events.base import DeliveryFailed, Sink
from edge_agent.clients.storage.deliveries import (
    Cursor,
    DeadLetter,
    DeadLetterQuery,
    DeadLetterState,
    DeliveryRepository,
)
from edge_agent.clients.storage.outbox import NewRecord, OutboxRecord, OutboxRepository
from edge_agent.clock import Clock, to_text
from edge_agent.config import EventSettings
from edge_agent.errors import InvalidInput, NotFound
from edge_agent.models import EVENTS_STREAM, Decision, EventType, Mark, Principal
from edge_agent.observability.metrics import Metrics
from edge_agent.services.audit import AuditService, atomically
from edge_agent.services.paging import check_limit

if TYPE_CHECKING:
    from prometheus_client import Counter

logger = logging.getLogger(__name__)

SINK_PREFIX = "sink:"
REDRIVE_ACTION = "events.redriven"
# After an unexpected error (the database gone, a bug), a worker waits this
# long before it reads its cursor again.
_CRASH_PAUSE_S = 1.0

# (attempts, reason) of a delivery given up on; None when it was delivered.
_Failure = tuple[int, str] | None
_NoteFailure = Callable[[int, str], Awaitable[None]]


def consumer_name(sink_name: str) -> str:
    """The cursor name of a sink's deliveries."""
    return SINK_PREFIX + sink_name


# --- the events the attendance service writes ---------------------------------


class UnknownFaceThrottle:
    """At most one ``face.unknown`` per camera per ``interval``: a stranger in
    front of a camera for a minute is one event, not one per frame. The
    event that ends a quiet spell says how many it stands for."""

    def __init__(self, interval: timedelta) -> None:
        self._interval = interval
        self._last: dict[str, datetime] = {}
        self._held: dict[str, int] = {}

    def admit(self, camera_id: str, at: datetime) -> int | None:
        """How many unknown faces of the camera were held back before this
        one, or ``None`` when this one is held back too."""
        last = self._last.get(camera_id)
        if last is not None and abs(at - last) < self._interval:
            self._held[camera_id] = self._held.get(camera_id, 0) + 1
            return None
        self._last[camera_id] = at
        return self._held.pop(camera_id, 0)


def unknown_face_event(decision: Decision, held_back: int = 0) -> NewRecord:
    """A face nobody enrolled, with what the recognizer came closest to;
    ``held_back`` unknown faces of the camera before it made no event."""
    payload = {
        "held_back": held_back,
        "decision_id": decision.id,
        "frame_id": decision.frame_id,
        "camera_id": decision.camera_id,
        "similarity": decision.similarity,
        "subject": decision.subject,
        "reason_code": decision.reason_code.value,
        "captured_at": to_text(decision.captured_at),
    }
    return NewRecord(
        EVENTS_STREAM, EventType.UNKNOWN_FACE, decision.captured_at, payload
    )


def attendance_marked_event(mark: Mark) -> NewRecord:
    """A mark, naming the person by id only: an erasure removes a person's
    employee number and name from the database, and outbox payloads are kept
    as written, so they must hold neither."""
    payload = {
        "mark_id": mark.id,
        "person_id": mark.person_id,
        "kind": mark.kind.value,
        "camera_id": mark.camera_id,
        "marked_at": to_text(mark.marked_at),
        "work_day": mark.counts_for,
        "similarity": mark.similarity,
        "decision_id": mark.decision_id,
        "source": mark.source.value,
    }
    return NewRecord(
        EVENTS_STREAM, EventType.ATTENDANCE_MARKED, mark.marked_at, payload
    )


# --- delivery -----------------------------------------------------------------


class EventDispatcher:
    """Runs one delivery worker per sink; opens the sinks and closes them."""

    def __init__(
        self,
        outbox: OutboxRepository,
        deliveries: DeliveryRepository,
        sinks: Sequence[Sink],
        settings: EventSettings,
        clock: Clock,
        *,
        metrics: Metrics | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._sinks = list(sinks)
        self._workers = [
            _SinkWorker(sink, outbox, deliveries, settings, clock, metrics, rng)
            for sink in self._sinks
        ]
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Open every sink and start its worker; a sink that fails to open is
        left out (and logged), the others run."""
        for worker in self._workers:
            try:
                await worker.sink.open()
            except Exception:
                logger.exception("Event sink %s did not open", worker.sink.name)
                continue
            name = f"events-{worker.sink.name}"
            self._tasks.append(asyncio.create_task(worker.run(), name=name))
        logger.info("Event dispatcher started with %d sink(s)", len(self._tasks))

    async def stop(self) -> None:
        """Stop every worker at once (backoff waits included), then close the
        sinks. An event in flight is delivered again after the next start."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        for worker in self._workers:
            try:
                await worker.sink.close()
            except Exception:
                logger.exception("Event sink %s did not close", worker.sink.name)

    def wake(self) -> None:
        """New events are committed: let idle workers look now."""
        for worker in self._workers:
            worker.wakeup.set()


@dataclass(frozen=True, slots=True)
class _SinkCounters:
    delivered: Counter
    failed: Counter
    dead_lettered: Counter

    @classmethod
    def of(cls, metrics: Metrics | None, sink: str) -> _SinkCounters | None:
        if metrics is None:
            return None
        return cls(
            metrics.events_delivered.labels(sink),
            metrics.events_failed.labels(sink),
            metrics.events_dead_lettered.labels(sink),
        )


class _SinkWorker:
    """Delivers one sink's events, in order, after its cursor."""

    def __init__(
        self,
        sink: Sink,
        outbox: OutboxRepository,
        deliveries: DeliveryRepository,
        settings: EventSettings,
        clock: Clock,
        metrics: Metrics | None,
        rng: random.Random | None,
    ) -> None:
        self.sink = sink
        self.consumer = consumer_name(sink.name)
        self.wakeup = asyncio.Event()
        self._outbox = outbox
        self._deliveries = deliveries
        self._settings = settings
        self._clock = clock
        self._counters = _SinkCounters.of(metrics, sink.name)
        self._rng = rng or random.Random()

    async def run(self) -> None:
        """Deliver until cancelled; an unexpected error pauses, then resumes."""
        while True:
            try:
                await self._work()
            except Exception:
                logger.exception("Event sink %s stopped unexpectedly", self.sink.name)
                await asyncio.sleep(_CRASH_PAUSE_S)

    async def _work(self) -> None:
        while True:
            # Cleared before reading, so a wake during the read is not lost.
            self.wakeup.clear()
            busy = await self._redeliver()
            busy = await self._deliver_batch() or busy
            if not busy:
                await self._idle()

    async def _idle(self) -> None:
        try:
            async with asyncio.timeout(self._settings.poll_interval_s):
                await self.wakeup.wait()
        except TimeoutError:
            pass

    async def _deliver_batch(self) -> bool:
        """Deliver the next batch after the cursor; False when there was none."""
        cursor = await self._deliveries.cursor(self.consumer, EVENTS_STREAM, self._now)
        records = await self._outbox.after(
            EVENTS_STREAM, cursor.position, self._settings.batch
        )
        if not records:
            return False

        # A failure count kept across a restart belongs to the first event the
        # sink wants; the events it skips before that were never attempted.
        attempts, skipped_to = cursor.attempts, None
        for record in records:
            if not self.sink.accepts(record.type):
                skipped_to = record.seq
                continue
            await self._deliver_new(cursor, record, attempts)
            attempts, skipped_to = 0, None
        if skipped_to is not None:
            await self._deliveries.advance(
                self.consumer, skipped_to, self._now, delivered=False
            )
        return True

    async def _deliver_new(
        self, cursor: Cursor, record: OutboxRecord, attempts: int
    ) -> None:
        async def note(count: int, reason: str) -> None:
            await self._deliveries.record_failure(
                self.consumer, count, reason, self._now
            )

        failure = await self._attempt(record, attempts, note)
        if failure is None:
            await self._deliveries.advance(
                self.consumer, record.seq, self._now, delivered=True
            )
            return
        count, reason = failure
        await self._deliveries.dead_letter(cursor, record.seq, count, reason, self._now)
        if self._counters:
            self._counters.dead_lettered.inc()
        logger.warning(
            "Event sink %s gave up on event %d after %d attempt(s): %s",
            self.sink.name,
            record.seq,
            count,
            reason,
        )

    async def _redeliver(self) -> bool:
        """Deliver the dead letters queued for another try; False when none."""
        rows = await self._deliveries.redrives(self.consumer, self._settings.batch)
        for row in rows:
            await self._redeliver_one(row)
        return bool(rows)

    async def _redeliver_one(self, row: DeadLetter) -> None:
        record = await self._outbox.get(row.stream, row.seq)
        if record is None:
            reason = "the event is no longer in the outbox"
            await self._deliveries.dead_again(
                self.consumer, row.seq, row.attempts, reason, self._now
            )
            return

        async def note(_: int, reason: str) -> None:
            await self._deliveries.note_error(self.consumer, reason, self._now)

        failure = await self._attempt(record, 0, note)
        if failure is None:
            await self._deliveries.mark_redelivered(self.consumer, row.seq, self._now)
            logger.info("Event sink %s re-delivered event %d", self.sink.name, row.seq)
            return
        count, reason = failure
        await self._deliveries.dead_again(
            self.consumer, row.seq, count, reason, self._now
        )

    async def _attempt(
        self, record: OutboxRecord, attempts: int, note: _NoteFailure
    ) -> _Failure:
        """Deliver ``record``, retrying after backoff, until it is taken or
        given up on; ``attempts`` failed before, ``note`` keeps each failure."""
        while True:
            try:
                await self.sink.deliver(record)
            except Exception as exc:
                failure = self._as_failure(record, exc)
            else:
                if self._counters:
                    self._counters.delivered.inc()
                return None

            attempts += 1
            if self._counters:
                self._counters.failed.inc()
            if failure.permanent or attempts >= self._settings.max_attempts:
                return attempts, failure.reason
            await note(attempts, failure.reason)
            delay = self._retry_delay(attempts, failure)
            logger.info(
                "Event sink %s: event %d failed (attempt %d: %s); retry in %.2f s",
                self.sink.name,
                record.seq,
                attempts,
                failure.reason,
                delay,
            )
            await asyncio.sleep(delay)

    def _retry_delay(self, attempts: int, failure: DeliveryFailed) -> float:
        settings = self._settings
        delay = backoff(
            attempts - 1,
            base_s=settings.backoff_base_s,
            cap_s=settings.backoff_cap_s,
            rng=self._rng,
        )
        if failure.retry_after_s is None:
            return delay
        # The receiver's wish, within the cap: a receiver cannot park a sink
        # for longer than the settings allow.
        return max(delay, min(failure.retry_after_s, settings.backoff_cap_s))

    def _as_failure(self, record: OutboxRecord, exc: Exception) -> DeliveryFailed:
        if isinstance(exc, DeliveryFailed):
            return exc
        # A sink is to raise DeliveryFailed only; anything else is a defect,
        # logged in full, and retried like a transient failure.
        logger.error(
            "Event sink %s raised unexpectedly on event %d",
            self.sink.name,
            record.seq,
            exc_info=exc,
        )
        return DeliveryFailed(f"unexpected {type(exc).__name__}: {exc}")

    @property
    def _now(self) -> datetime:
        return self._clock.now()


# --- reading and re-driving -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class EventPage:
    """Events after a seq; ``next_after`` continues the listing (None: the
    end); ``head`` is the stream's latest seq."""

    events: list[OutboxRecord]
    next_after: int | None
    head: int


@dataclass(frozen=True, slots=True)
class SinkStatus:
    """How far a sink has got. ``lag`` counts the events after its cursor that
    it takes; ``configured`` is False for a sink removed from the settings
    that still has a cursor or dead letters."""

    name: str
    consumer: str
    configured: bool
    position: int
    head: int
    lag: int
    attempts: int
    last_error: str | None
    last_success_at: datetime | None
    dead_letters: int


@dataclass(frozen=True, slots=True)
class Redrive:
    """The dead letters of ``sink`` queued for another delivery, by seq."""

    sink: str
    queued: list[int]


class EventService:
    """The outbox's events, the sinks' progress and their dead letters."""

    def __init__(
        self,
        outbox: OutboxRepository,
        deliveries: DeliveryRepository,
        sink_names: Sequence[str],
        clock: Clock,
        *,
        audit: AuditService | None = None,
        on_redrive: Callable[[], None] | None = None,
        event_types: Mapping[str, frozenset[str] | None] | None = None,
    ) -> None:
        """``sink_names``: the configured sinks; ``on_redrive`` tells a running
        dispatcher that dead letters were queued (without one, it finds them
        at its next poll)."""
        self._outbox = outbox
        self._deliveries = deliveries
        self._sink_names = list(sink_names)
        self._event_types = dict(event_types or {})
        self._clock = clock
        self._audit = audit
        self._on_redrive = on_redrive

    async def list_events(
        self, after: int = 0, event_type: str | None = None, limit: int = 100
    ) -> EventPage:
        """Events after seq ``after``, oldest first, optionally of one type."""
        check_limit(limit)
        if after < 0:
            raise InvalidInput("after must not be negative")
        head = await self._outbox.head(EVENTS_STREAM)
        if event_type is None:
            events = await self._outbox.after(EVENTS_STREAM, after, limit)
            last = events[-1].seq if events else after
        else:
            events = await self._outbox.of_type_after(
                EVENTS_STREAM, event_type, after, limit
            )
            # A short page means no more of that type up to the head.
            last = events[-1].seq if len(events) == limit else head
        return EventPage(events, last if last < head else None, head)

    async def sinks(self) -> list[SinkStatus]:
        """Every configured sink, then any other that left a cursor behind."""
        head = await self._outbox.head(EVENTS_STREAM)
        dead = await self._deliveries.dead_counts()
        cursors = {c.consumer: c for c in await self._deliveries.cursors(SINK_PREFIX)}
        configured = [consumer_name(name) for name in self._sink_names]
        others = sorted((set(cursors) | _sinks_in(dead)) - set(configured))
        statuses = [
            _status(consumer, consumer in configured, cursors.get(consumer), head, dead)
            for consumer in [*configured, *others]
        ]
        return [await self._exact_lag(status) for status in statuses]

    async def _exact_lag(self, status: SinkStatus) -> SinkStatus:
        """Count only the event types the sink takes, when it takes some only."""
        types = self._event_types.get(status.name)
        if types is None:
            return status
        lag = await self._outbox.count_after(EVENTS_STREAM, status.position, types)
        return dataclasses.replace(status, lag=lag)

    async def dead_letters(
        self,
        sink: str | None = None,
        state: DeadLetterState | None = None,
        after: int = 0,
        limit: int = 100,
    ) -> list[DeadLetter]:
        """Dead letters of every sink, or of one, by sink then seq; ``after``
        (a seq) pages through one sink's."""
        check_limit(limit)
        consumer = await self._known_consumer(sink) if sink is not None else None
        query = DeadLetterQuery(consumer, state, after, limit)
        found = await self._deliveries.dead_letters(query)
        # Other consumers (the sync of each stream) keep dead letters too.
        return [d for d in found if d.consumer.startswith(SINK_PREFIX)]

    async def redrive(
        self, sink: str, seqs: Sequence[int] | None, actor: Principal | None
    ) -> Redrive:
        """Queue a configured sink's dead letters (all, or ``seqs``) for
        another delivery; seqs not dead (unknown, or already queued) are left."""
        if sink not in self._sink_names:
            raise NotFound(f"no configured event sink {sink!r}", sink=sink)
        consumer = consumer_name(sink)
        async with atomically(self._audit):
            queued = await self._deliveries.request_redrive(consumer, seqs, self._now())
            if self._audit is not None:
                requested = list(seqs) if seqs else "all"
                await self._audit.record(
                    actor,
                    REDRIVE_ACTION,
                    target=consumer,
                    details={"requested": requested, "queued": queued},
                )
        logger.info("Queued %d dead letter(s) of sink %s again", len(queued), sink)
        if queued and self._on_redrive is not None:
            self._on_redrive()
        return Redrive(sink, queued)

    async def _known_consumer(self, sink: str) -> str:
        consumer = consumer_name(sink)
        if sink in self._sink_names:
            return consumer
        if await self._deliveries.find_cursor(consumer) is None:
            raise NotFound(f"no event sink {sink!r}", sink=sink)
        return consumer

    def _now(self) -> datetime:
        return self._clock.now()


def _sinks_in(counts: dict[str, int]) -> set[str]:
    return {consumer for consumer in counts if consumer.startswith(SINK_PREFIX)}


def _status(
    consumer: str,
    configured: bool,
    cursor: Cursor | None,
    head: int,
    dead: dict[str, int],
) -> SinkStatus:
    position = cursor.position if cursor else 0
    return SinkStatus(
        name=consumer.removeprefix(SINK_PREFIX),
        consumer=consumer,
        configured=configured,
        position=position,
        head=head,
        lag=max(head - position, 0),
        attempts=cursor.attempts if cursor else 0,
        last_error=cursor.last_error if cursor else None,
        last_success_at=cursor.last_success_at if cursor else None,
        dead_letters=dead.get(consumer, 0),
    )
