"""Sync service: ship attendance, audit, events (and decisions) to the central
server, resumably, whatever the uplink does.

Each stream has its own worker and its own cursor (``sync:<stream>``), the
last ``seq`` the central server acknowledged. A worker reads at most one
batch after its cursor, sends it, and moves the cursor to the server's
acknowledged high-water mark only once that answer is in; so a crash before
the send, during it, or after the central commit but before the local ack
just sends the same records again, and the server, which stores each
(site, stream, seq) once, acknowledges them without storing them twice.
Memory stays one batch per stream however long the backlog.

What the server answers decides what happens next:

- acknowledged: the cursor moves; records it quarantined become dead letters
  (visible, re-drivable) and the stream goes on;
- a gap (it expects an earlier or a later seq): the cursor follows the
  server's expected seq, so the next batch fills the gap or skips what the
  server already holds;
- too large (413): the batch is halved, down to one record, which is then
  set aside as a dead letter;
- the audit chain does not continue, or a batch key was reused with other
  records (422): the stream stops, a ``system.anomaly`` event is raised, and
  an admin resumes it (``edge-agent sync resume``) once understood. The audit
  stream also stops rather than dead-letter any entry, since its chain must
  stay whole;
- anything else (network, 5xx, 429, a refused token): full-jitter exponential
  backoff up to a cap, with no limit on attempts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError

from cloud_sync.client import (
    BatchRejected,
    CentralClient,
    ChainRefused,
    GapRefused,
    PayloadConflict,
    Refused,
    Retryable,
    SyncError,
    TooLarge,
    backoff,
)
from cloud_sync.protocol import BatchAck, Record, Stream, split_batches
from edge_agent.clients.storage.deliveries import (
    Cursor,
    DeadLetter,
    DeadLetterQuery,
    DeliveryRepository,
)
from edge_agent.clients.storage.outbox import NewRecord, OutboxRecord, OutboxRepository
from edge_agent.clients.storage.sync_sources import OutboxSource, StreamSource
from edge_agent.clock import Clock
from edge_agent.config import SyncSettings
from edge_agent.errors import InvalidInput
from edge_agent.models import EVENTS_STREAM, EventType, Principal
from edge_agent.observability import tracing
from edge_agent.services.audit import AuditService, atomically

logger = logging.getLogger(__name__)

SYNC_PREFIX = "sync:"
SYNC_RESUMED = "sync.resumed"
SYNC_REDRIVEN = "sync.redriven"
# After an unexpected error (the database gone, a bug), a worker waits this
# long before it reads its cursor again.
_CRASH_PAUSE_S = 5.0


def consumer_name(stream: Stream | str) -> str:
    """The cursor name of a stream's sync."""
    return f"{SYNC_PREFIX}{stream}"


@dataclass(frozen=True, slots=True)
class StreamStatus:
    """How far a stream's sync has got; ``lag_s`` is the age of the oldest
    record not yet acknowledged (None when there is none)."""

    stream: str
    state: str
    head: int
    acked: int
    lag_records: int
    lag_s: float | None
    last_error: str | None
    last_success_at: datetime | None
    dead_letters: int


class _Unsendable(Exception):
    """A stored record that does not make a valid record of the protocol."""

    def __init__(self, seq: int, reason: str) -> None:
        super().__init__(reason)
        self.seq = seq
        self.reason = reason


@dataclass(slots=True)
class _Live:
    """What a worker knows that the database does not: its pace and limits."""

    state: str = "starting"
    attempts: int = 0
    batch_limit: int = 500
    wake: asyncio.Event | None = None


class SyncService:
    """The uploader's workers, and the status and controls of the API and CLI."""

    def __init__(
        self,
        sources: dict[Stream, StreamSource],
        deliveries: DeliveryRepository,
        outbox: OutboxRepository,
        client: Callable[[], CentralClient] | None,
        settings: SyncSettings,
        site_id: str,
        clock: Clock,
        *,
        on_events: Callable[[], None] | None = None,
        consumers: dict[Stream, list[str]] | None = None,
        audit: AuditService | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """``client`` is None when no central server is configured: status still
        answers (every stream ``off``), and nothing is sent. ``consumers``
        names the other readers of an outbox stream (event sinks), whose
        cursors must pass a record before it is pruned."""
        self._sources = sources
        self._deliveries = deliveries
        self._outbox = outbox
        self._client_factory = client
        self._settings = settings
        self._site_id = site_id
        self._clock = clock
        self._on_events = on_events or (lambda: None)
        self._rng = rng or random.Random()
        self._other_consumers = consumers or {}
        self._audit = audit
        self._live = {
            stream: _Live(batch_limit=settings.batch_records) for stream in sources
        }
        self._client: CentralClient | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def enabled(self) -> bool:
        return self._client_factory is not None

    @property
    def streams(self) -> list[Stream]:
        return list(self._sources)

    # --- running ----------------------------------------------------------------

    async def start(self) -> None:
        """Start one worker per stream; nothing when sync is off or running."""
        if self._client_factory is None or self._tasks:
            return
        self._client = self._client_factory()
        for stream in self._sources:
            self._live[stream].wake = asyncio.Event()
            task = asyncio.create_task(self._run(stream), name=f"sync-{stream}")
            self._tasks.append(task)
        logger.info("Sync to the central server started for %s", self.streams)

    async def stop(self) -> None:
        """Cancel the workers, wait for them, and close the client."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def trigger(self) -> None:
        """Start a round now on every stream, cutting short any backoff."""
        for live in self._live.values():
            live.attempts = 0
            if live.wake is not None:
                live.wake.set()

    async def _run(self, stream: Stream) -> None:
        while True:
            try:
                pause = await self.step(stream)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("Sync of %s failed unexpectedly", stream)
                pause = _CRASH_PAUSE_S
            if pause > 0:
                await self._sleep(stream, pause)

    async def _sleep(self, stream: Stream, seconds: float) -> None:
        wake = self._live[stream].wake
        if wake is None:
            await asyncio.sleep(seconds)
            return
        wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout=seconds)

    # --- one step ---------------------------------------------------------------

    async def step(self, stream: Stream) -> float:
        """Send at most one batch of ``stream``; return how long to wait next."""
        client = self._open_client()
        cursor = await self._cursor(stream)
        if cursor.stopped_reason is not None:
            self._live[stream].state = "stopped"
            return self._settings.idle_interval_s

        source = self._sources[stream]
        try:
            batch = await self._next_batch(stream, source, cursor.position)
        except _Unsendable as exc:
            await self._set_aside(stream, cursor, exc.seq, exc.reason)
            return 0.0
        head = await source.head()
        if not batch:
            return await self._idle(stream, cursor, head)

        try:
            # Each batch is a trace of its own: the worker serves no request.
            with tracing.continued(None):
                ack = await client.send_batch(self._site_id, stream, batch, head)
        except SyncError as exc:
            return await self._failed(stream, cursor, batch, exc)
        await self._acknowledged(stream, cursor, ack)
        return 0.0

    def _open_client(self) -> CentralClient:
        if self._client is None:
            if self._client_factory is None:
                raise RuntimeError("sync is off: no central server is configured")
            self._client = self._client_factory()
        return self._client

    async def _idle(self, stream: Stream, cursor: Cursor, head: int) -> float:
        """Nothing to send: stop the stream if records it should hold are gone."""
        if head > cursor.position:
            reason = f"the records after seq {cursor.position} are missing"
            await self._stop(stream, cursor, reason)
        self._live[stream].state = "idle"
        return self._settings.idle_interval_s

    async def _next_batch(
        self, stream: Stream, source: StreamSource, after: int
    ) -> list[Record]:
        limit = self._live[stream].batch_limit
        stored = await source.records(after, limit)
        records = []
        for row in stored:
            try:
                records.append(self._record(stream, row))
            except ValidationError as exc:
                if records:
                    break  # send those before it; it is handled next time
                raise _Unsendable(row.seq, f"not a valid record: {exc}") from exc
        batches = split_batches(
            records, max_records=limit, max_bytes=self._settings.batch_bytes
        )
        return next(iter(batches), [])

    def _record(self, stream: Stream, row: OutboxRecord) -> Record:
        return Record(
            site_id=self._site_id,
            stream=stream,
            seq=row.seq,
            id=uuid.UUID(row.id),
            type=row.type,
            occurred_at=row.occurred_at,
            monotonic_ns=row.monotonic_ns,
            boot_id=row.boot_id,
            payload=row.payload,
        )

    async def _acknowledged(
        self, stream: Stream, cursor: Cursor, ack: BatchAck
    ) -> None:
        live = self._live[stream]
        now = self._clock.now()
        for item in ack.quarantined:
            logger.warning(
                "The central server set %s record %d aside: %s",
                stream,
                item.seq,
                item.reason,
            )
        set_aside = [(q.seq, f"quarantined: {q.reason}") for q in ack.quarantined]
        await self._deliveries.acknowledge(cursor, ack.acked_seq, set_aside, now)
        await self._prune(stream, max(cursor.position, ack.acked_seq))
        if ack.clock_skew_s is not None:
            logger.warning(
                "The central server finds this site's clock off by %.1f s",
                ack.clock_skew_s,
            )
        live.state, live.attempts = "sending", 0
        live.batch_limit = self._settings.batch_records

    async def _prune(self, stream: Stream, acked: int) -> None:
        """Drop the outbox rows every reader of the stream is done with, so
        disk use follows what is unsent, not what was ever written; ``acked``
        is where this stream's cursor now stands."""
        if not isinstance(self._sources[stream], OutboxSource):
            return
        others = self._other_consumers.get(stream, [])
        positions = [acked]
        for name in others:
            cursor = await self._deliveries.find_cursor(name)
            positions.append(cursor.position if cursor else 0)
        for name in [consumer_name(stream), *others]:
            # A dead letter waits in the outbox for a redrive to send it.
            kept = await self._deliveries.oldest_kept(name)
            if kept is not None:
                positions.append(kept - 1)
        done = min(positions)
        if done > 0:
            await self._outbox.prune(str(stream), done)

    async def _failed(
        self, stream: Stream, cursor: Cursor, batch: list[Record], exc: SyncError
    ) -> float:
        if isinstance(exc, GapRefused):
            await self._follow_gap(stream, cursor, exc.expected_seq)
            return 0.0
        if isinstance(exc, TooLarge):
            return await self._too_large(stream, cursor, batch, exc)
        if isinstance(exc, ChainRefused):
            reason = f"the central server refuses the audit chain: {exc}"
            await self._stop(stream, cursor, reason)
            return self._settings.idle_interval_s
        if isinstance(exc, PayloadConflict):
            reason = f"the central server holds other records for this batch: {exc}"
            await self._stop(stream, cursor, reason)
            return self._settings.idle_interval_s
        if isinstance(exc, BatchRejected):
            return await self._rejected(stream, cursor, batch, exc)
        return await self._back_off(stream, cursor, exc)

    async def _back_off(self, stream: Stream, cursor: Cursor, exc: SyncError) -> float:
        """A failure worth another try: count it, and wait the longer of the
        jittered backoff and the server's wish (within the cap)."""
        live = self._live[stream]
        live.attempts += 1
        live.state = "backoff"
        await self._deliveries.record_failure(
            cursor.consumer, cursor.attempts + 1, str(exc), self._clock.now()
        )
        wait = backoff(
            live.attempts - 1,
            base_s=self._settings.backoff_base_s,
            cap_s=self._settings.backoff_cap_s,
            rng=self._rng,
        )
        if isinstance(exc, Retryable) and exc.retry_after is not None:
            wait = max(wait, min(exc.retry_after, self._settings.backoff_cap_s))
        level = logging.WARNING if isinstance(exc, Refused) else logging.INFO
        logger.log(
            level, "Sync of %s failed (%s); next try in %.1f s", stream, exc, wait
        )
        return wait

    async def _follow_gap(self, stream: Stream, cursor: Cursor, expected: int) -> None:
        """Move the cursor to just before the seq the server expects."""
        target = expected - 1
        logger.warning(
            "The central server expects %s seq %d; this site was at %d",
            stream,
            expected,
            cursor.position,
        )
        if target > cursor.position:
            await self._deliveries.advance(
                cursor.consumer, target, self._clock.now(), delivered=True
            )
            return
        # The server holds less than this site thinks (restored from a backup,
        # say): send again from there, if this site still has that record.
        first = await self._sources[stream].records(target, 1)
        if target < cursor.position and first and first[0].seq == expected:
            await self._deliveries.rewind(cursor.consumer, target, self._clock.now())
            return
        await self._stop(
            stream,
            cursor,
            f"the central server expects seq {expected}, which this site no "
            "longer holds",
        )

    async def _too_large(
        self, stream: Stream, cursor: Cursor, batch: list[Record], exc: SyncError
    ) -> float:
        if len(batch) > 1:
            limit = self._halve(stream, batch)
            logger.info("Sync of %s: batch too large, now %d", stream, limit)
            return 0.0
        if stream is Stream.AUDIT:
            await self._stop(stream, cursor, f"audit entry too large: {exc}")
            return self._settings.idle_interval_s
        await self._deliveries.dead_letter(
            cursor,
            batch[0].seq,
            1,
            f"too large for the central server: {exc}",
            self._clock.now(),
        )
        return 0.0

    async def _rejected(
        self, stream: Stream, cursor: Cursor, batch: list[Record], exc: SyncError
    ) -> float:
        """The server refuses the batch itself: halve it until the one record
        at fault is found, and set that one aside."""
        if len(batch) > 1:
            self._halve(stream, batch)
            return 0.0
        await self._set_aside(stream, cursor, batch[0].seq, f"refused: {exc}")
        return 0.0

    def _halve(self, stream: Stream, batch: list[Record]) -> int:
        """Send half of ``batch`` next time; return the new limit."""
        limit = self._live[stream].batch_limit = max(1, len(batch) // 2)
        return limit

    async def _set_aside(
        self, stream: Stream, cursor: Cursor, seq: int, reason: str
    ) -> None:
        """A record that cannot travel becomes a dead letter and the stream goes
        on; an audit entry cannot be skipped, so the audit stream stops."""
        if stream is Stream.AUDIT:
            await self._stop(stream, cursor, f"audit entry {seq}: {reason}")
            return
        logger.warning("Sync of %s sets record %d aside: %s", stream, seq, reason)
        await self._deliveries.dead_letter(cursor, seq, 1, reason, self._clock.now())
        self._live[stream].batch_limit = self._settings.batch_records

    async def _stop(self, stream: Stream, cursor: Cursor, reason: str) -> None:
        """Stop the stream for an admin, and raise one anomaly saying why."""
        self._live[stream].state = "stopped"
        logger.error("Sync of %s stopped: %s", stream, reason)
        now = self._clock.now()
        anomaly = NewRecord(
            EVENTS_STREAM,
            EventType.SYSTEM_ANOMALY.value,
            now,
            {"check": f"sync.{stream}", "detail": reason, "stream": str(stream)},
        )
        await self._deliveries.stop(cursor.consumer, reason, anomaly, now)
        self._on_events()

    async def _cursor(self, stream: Stream) -> Cursor:
        return await self._deliveries.cursor(
            consumer_name(stream), str(stream), self._clock.now()
        )

    # --- status and controls ----------------------------------------------------

    async def status(self) -> list[StreamStatus]:
        """Every stream's progress, state and dead letters, in stream order."""
        dead = await self._deliveries.dead_counts()
        cursors = await self._sync_cursors()
        return [
            await self._status(stream, cursors.get(consumer_name(stream)), dead)
            for stream in self._sources
        ]

    async def _status(
        self, stream: Stream, cursor: Cursor | None, dead: dict[str, int]
    ) -> StreamStatus:
        acked = cursor.position if cursor else 0
        head = await self._sources[stream].head()
        return StreamStatus(
            stream=str(stream),
            state=self._state(stream, cursor),
            head=head,
            acked=acked,
            lag_records=max(head - acked, 0),
            lag_s=await self._lag_s(stream, acked),
            last_error=cursor.last_error if cursor else None,
            last_success_at=cursor.last_success_at if cursor else None,
            dead_letters=dead.get(consumer_name(stream), 0),
        )

    async def _sync_cursors(self) -> dict[str, Cursor]:
        """Every stream's cursor, by consumer name, in one query."""
        found = await self._deliveries.cursors(SYNC_PREFIX)
        return {cursor.consumer: cursor for cursor in found}

    async def _lag_s(self, stream: Stream, acked: int) -> float | None:
        """Age of the first record after ``acked``; None when there is none."""
        pending = await self._sources[stream].records(acked, 1)
        if not pending:
            return None
        return max((self._clock.now() - pending[0].occurred_at).total_seconds(), 0)

    def _state(self, stream: Stream, cursor: Cursor | None) -> str:
        if not self.enabled:
            return "off"
        if cursor is not None and cursor.stopped_reason is not None:
            return "stopped"
        return self._live[stream].state

    async def oldest_unsent_s(self) -> float | None:
        """Age of the oldest record not yet acknowledged, over every stream; None
        when sync is off (the monitor then has no sync lag to judge)."""
        if not self.enabled:
            return None
        cursors = await self._sync_cursors()
        ages = []
        for stream in self._sources:
            cursor = cursors.get(consumer_name(stream))
            age = await self._lag_s(stream, cursor.position if cursor else 0)
            if age is not None:
                ages.append(age)
        return max(ages, default=0.0)

    async def dead_letters(
        self, stream: str | None, limit: int = 100
    ) -> list[DeadLetter]:
        """Records the central server set aside (or that were too large)."""
        consumers = [consumer_name(self._parse(stream))] if stream else None
        found: list[DeadLetter] = []
        for consumer in consumers or [consumer_name(s) for s in self._sources]:
            query = DeadLetterQuery(consumer=consumer, limit=limit)
            found.extend(await self._deliveries.dead_letters(query))
        return found[:limit]

    async def resume(self, stream: str, actor: Principal) -> None:
        """Let a stopped stream go on (its cause understood and fixed)."""
        known = self._parse(stream)
        async with atomically(self._audit):
            await self._deliveries.resume(consumer_name(known), self._clock.now())
            await self._audited(actor, SYNC_RESUMED, known, {})
        self.trigger()

    async def redrive(
        self, stream: str, seqs: list[int] | None, actor: Principal
    ) -> list[int]:
        """Send dead letters of ``stream`` again: the cursor goes back to just
        before the first of them and the records after it travel again. The
        server acknowledges what it holds without storing it twice, and takes
        a record it had set aside once it now passes its checks."""
        known = self._parse(stream)
        consumer = consumer_name(known)
        async with atomically(self._audit):
            queued = await self._deliveries.request_redrive(
                consumer, seqs, self._clock.now()
            )
            if queued:
                now = self._clock.now()
                await self._deliveries.rewind(consumer, queued[0] - 1, now)
                await self._audited(actor, SYNC_REDRIVEN, known, {"seqs": len(queued)})
        if queued:
            self.trigger()
        return queued

    async def _audited(
        self, actor: Principal, action: str, stream: Stream, details: dict[str, int]
    ) -> None:
        if self._audit is not None:
            target = consumer_name(stream)
            await self._audit.record(actor, action, target=target, details=details)

    def _parse(self, stream: str) -> Stream:
        try:
            known = Stream(stream)
        except ValueError:
            known = None
        if known is None or known not in self._sources:
            names = ", ".join(str(s) for s in self._sources)
            raise InvalidInput(f"unknown sync stream {stream!r}; one of {names}")
        return known


__all__ = [
    "StreamStatus",
    "SyncService",
    "consumer_name",
]
