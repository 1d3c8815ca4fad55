"""The event dispatcher on a real SQLite file, with a real webhook receiver and
the local MQTT broker: order per sink, nothing lost while a sink is down, dead
letters that block nobody, re-driving, resuming after a restart, and events
committed with the decisions that make them."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import SecretStr

from edge_agent.clients.events.base import Sink
from edge_agent.clients.events.factory import (
    build_sinks,
    sink_event_types,
    sink_names,
)
from edge_agent.clients.events.webhook import verify_signature
from edge_agent.clients.storage.attendance import AttendanceRepository
from edge_agent.clients.storage.cameras import CameraRepository
from edge_agent.clients.storage.database import Database
from edge_agent.clients.storage.deliveries import DeadLetterState, DeliveryRepository
from edge_agent.clients.storage.frames import FrameRecord, FrameRepository
from edge_agent.clients.storage.outbox import NewRecord, OutboxRepository
from edge_agent.clients.storage.people import PeopleRepository
from edge_agent.config import EventSettings
from edge_agent.errors import NotFound
from edge_agent.models import (
    EVENTS_STREAM,
    Box,
    Camera,
    Candidate,
    Direction,
    EventType,
    Frame,
    Outcome,
    Person,
    PersonStatus,
    RecognizedFace,
    local_admin,
)
from edge_agent.observability.metrics import Metrics
from edge_agent.services.attendance import AttendanceService
from edge_agent.services.events import EventDispatcher, EventService
from edge_agent.services.rules import AttendancePolicy
from tests.mqtt_watch import Watcher, unique_prefix, watching
from tests.support import eventually
from tests.webhook_receiver import WebhookReceiver

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
SECRET = "hook-secret"


class Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    """A fresh appliance database."""
    database = Database(tmp_path / "edge.sqlite3")
    await database.open()
    yield database
    await database.close()


@pytest.fixture
async def receivers() -> AsyncIterator[list[WebhookReceiver]]:
    """Two running webhook receivers, "a" and "b"."""
    started = [WebhookReceiver(), WebhookReceiver()]
    for receiver in started:
        await receiver.start()
    yield started
    for receiver in started:
        await receiver.stop()


def event_settings(
    receivers: Sequence[WebhookReceiver],
    mqtt: dict[str, Any] | None = None,
    **changes: Any,
) -> EventSettings:
    hooks = [
        {"name": name, "url": r.url, "secret": SecretStr(SECRET), "timeout_s": 2.0}
        for name, r in zip("ab", receivers, strict=False)
    ]
    values: dict[str, Any] = {
        "max_attempts": 1000,
        "backoff_base_s": 0.02,
        "backoff_cap_s": 0.1,
        "batch": 3,
        "poll_interval_s": 0.2,
        "webhooks": hooks,
        "mqtt": mqtt or {},
        **changes,
    }
    return EventSettings.model_validate(values)


class Harness:
    """The dispatcher and the event service over one database."""

    def __init__(self, db: Database, settings: EventSettings) -> None:
        self.db = db
        self.settings = settings
        self.outbox = OutboxRepository(db)
        self.deliveries = DeliveryRepository(db)
        self.metrics = Metrics()
        self.dispatcher: EventDispatcher | None = None
        self.service = EventService(
            self.outbox,
            self.deliveries,
            sink_names(settings),
            Clock(),
            on_redrive=self.wake,
            event_types=sink_event_types(settings),
        )

    def wake(self) -> None:
        if self.dispatcher is not None:
            self.dispatcher.wake()

    @asynccontextmanager
    async def running(self, sinks: list[Sink] | None = None) -> AsyncIterator[None]:
        chosen = (
            sinks
            if sinks is not None
            else build_sinks(self.settings, "site-1", Clock())
        )
        self.dispatcher = EventDispatcher(
            self.outbox,
            self.deliveries,
            chosen,
            self.settings,
            Clock(),
            metrics=self.metrics,
        )
        await self.dispatcher.start()
        try:
            yield
        finally:
            await self.dispatcher.stop()
            self.dispatcher = None

    async def add(self, count: int, event_type: str = EventType.CAMERA_OFFLINE) -> None:
        for n in range(count):
            payload = {"camera_id": f"cam-{n}", "n": n}
            await self.outbox.add(NewRecord(EVENTS_STREAM, event_type, START, payload))
        self.wake()


def seqs(receiver: WebhookReceiver) -> list[int]:
    return [int(event["seq"]) for event in receiver.events]


def first_seen_in_order(values: list[int]) -> list[int]:
    """``values`` with repeats dropped: at-least-once may deliver twice."""
    return list(dict.fromkeys(values))


async def test_a_sink_down_for_a_while_gets_every_event_in_order(
    db: Database, receivers: list[WebhookReceiver], mqtt_broker: tuple[str, int]
) -> None:
    down, up = receivers
    prefix = unique_prefix()
    mqtt = {
        "enabled": True,
        "host": mqtt_broker[0],
        "port": mqtt_broker[1],
        "topic_prefix": prefix,
        "client_id": f"edge-{uuid.uuid4().hex[:10]}",
        "reconnect_min_s": 0.05,
        "reconnect_max_s": 0.2,
    }
    harness = Harness(db, event_settings(receivers, mqtt))
    await down.stop()

    async with watching(*mqtt_broker, prefix) as watcher, harness.running():
        await harness.add(7)
        await up.wait_for_events(7)
        await _wait_for_failures(harness, "webhook:a")
        await down.start()
        await down.wait_for_events(7)
        await watcher.wait_count(f"{prefix}/site-1/events/camera.offline", 7)

        # A cursor moves just after its receiver answered: wait for that too.
        async def caught_up() -> bool:
            return all(s.position == 7 for s in await harness.service.sinks())

        await eventually(caught_up)

    assert first_seen_in_order(seqs(down)) == [1, 2, 3, 4, 5, 6, 7]
    assert seqs(up) == [1, 2, 3, 4, 5, 6, 7]
    _assert_in_order(watcher, f"{prefix}/site-1/events/camera.offline")
    for request in down.requests + up.requests:
        headers = request.headers
        assert verify_signature(
            SECRET,
            headers["X-Edge-Timestamp"],
            request.body,
            headers["X-Edge-Signature"],
            60,
            time.time(),
        )
    statuses = {s.name: s for s in await harness.service.sinks()}
    assert {name: s.lag for name, s in statuses.items()} == {
        "webhook:a": 0,
        "webhook:b": 0,
        "mqtt": 0,
    }
    assert statuses["webhook:a"].attempts == 0
    assert statuses["webhook:a"].last_success_at is not None


async def _wait_for_failures(harness: Harness, sink: str) -> None:
    async def failed() -> bool:
        status = {s.name: s for s in await harness.service.sinks()}[sink]
        return status.attempts >= 2 and status.last_error is not None

    await eventually(failed)


def _assert_in_order(watcher: Watcher, topic: str) -> None:
    values = [json.loads(m.payload)["seq"] for m in watcher.on(topic)]
    assert first_seen_in_order(values) == sorted(set(values))


async def test_a_failing_sink_dead_letters_without_holding_back_the_other(
    db: Database, receivers: list[WebhookReceiver]
) -> None:
    failing, healthy = receivers
    failing.status = 500
    harness = Harness(db, event_settings(receivers, max_attempts=3))

    async with harness.running():
        await harness.add(4)
        await healthy.wait_for_events(4)

        async def all_dead() -> bool:
            dead = await harness.service.dead_letters(sink="webhook:a")
            return len(dead) == 4

        await eventually(all_dead)

        dead = await harness.service.dead_letters(sink="webhook:a")
        assert [d.seq for d in dead] == [1, 2, 3, 4]
        assert {d.attempts for d in dead} == {3}
        assert all("500" in d.reason for d in dead)
        assert len(failing.requests) == 12
        (status,) = [s for s in await harness.service.sinks() if s.name == "webhook:a"]
        assert status.dead_letters == 4
        assert status.lag == 0

        failing.status = 200
        redrive = await harness.service.redrive("webhook:a", [2, 3], local_admin("t"))
        assert redrive.queued == [2, 3]
        await failing.wait_for_events(2)

        async def redelivered() -> bool:
            rows = await harness.service.dead_letters(
                sink="webhook:a", state=DeadLetterState.REDELIVERED
            )
            return len(rows) == 2

        await eventually(redelivered)

    assert seqs(failing) == [2, 3]
    assert seqs(healthy) == [1, 2, 3, 4]
    left = await harness.service.dead_letters(
        sink="webhook:a", state=DeadLetterState.DEAD
    )
    assert [d.seq for d in left] == [1, 4]
    sample = harness.metrics.render().decode()
    assert 'edge_events_dead_lettered_total{sink="webhook:a"} 4.0' in sample


async def test_a_permanent_refusal_dead_letters_at_once(
    db: Database, receivers: list[WebhookReceiver]
) -> None:
    refusing = receivers[0]
    refusing.status = 422
    harness = Harness(db, event_settings(receivers[:1]))

    async with harness.running():
        await harness.add(2)

        async def both_dead() -> bool:
            return len(await harness.service.dead_letters()) == 2

        await eventually(both_dead)

    assert len(refusing.requests) == 2
    assert {d.attempts for d in await harness.service.dead_letters()} == {1}


async def test_a_restart_resumes_after_the_cursor(
    db: Database, receivers: list[WebhookReceiver]
) -> None:
    receiver = receivers[0]
    harness = Harness(db, event_settings(receivers[:1]))

    async with harness.running():
        await harness.add(3)
        await receiver.wait_for_events(3)
    await harness.add(2)
    async with harness.running():
        await receiver.wait_for_events(5)
        await asyncio.sleep(0.1)

    assert seqs(receiver) == [1, 2, 3, 4, 5]


async def test_types_a_sink_does_not_take_are_skipped(
    db: Database, receivers: list[WebhookReceiver]
) -> None:
    receiver = receivers[0]
    settings = event_settings(receivers[:1])
    hook = settings.webhooks[0].model_copy(update={"event_types": ["face.unknown"]})
    settings = settings.model_copy(update={"webhooks": [hook]})
    harness = Harness(db, settings)

    async with harness.running():
        await harness.add(4, EventType.CAMERA_ONLINE)
        await harness.add(1, EventType.UNKNOWN_FACE)
        await harness.add(2, EventType.CAMERA_ONLINE)
        await receiver.wait_for_events(1)

        async def caught_up() -> bool:
            (status,) = await harness.service.sinks()
            return status.position == 7

        await eventually(caught_up)

    assert seqs(receiver) == [5]


async def test_a_sinks_lag_counts_only_the_types_it_takes(
    db: Database, receivers: list[WebhookReceiver]
) -> None:
    settings = event_settings(receivers[:1])
    hook = settings.webhooks[0].model_copy(update={"event_types": ["face.unknown"]})
    harness = Harness(db, settings.model_copy(update={"webhooks": [hook]}))

    await harness.add(4, EventType.CAMERA_ONLINE)
    await harness.add(2, EventType.UNKNOWN_FACE)
    (status,) = await harness.service.sinks()

    assert (status.position, status.head, status.lag) == (0, 6, 2)


async def test_stop_is_prompt_during_a_long_backoff(
    db: Database, receivers: list[WebhookReceiver]
) -> None:
    receiver = receivers[0]
    receiver.status = 503
    settings = event_settings(receivers[:1], backoff_base_s=30.0, backoff_cap_s=60.0)
    harness = Harness(db, settings)

    async with harness.running():
        await harness.add(1)
        await eventually(lambda: len(receiver.requests) >= 1)
        await asyncio.sleep(0.05)
        began = time.monotonic()
    assert time.monotonic() - began < 1.0

    (status,) = await harness.service.sinks()
    assert status.position == 0
    assert status.attempts >= 1
    assert "503" in (status.last_error or "")


async def test_the_event_service_lists_and_filters(
    db: Database, receivers: list[WebhookReceiver]
) -> None:
    harness = Harness(db, event_settings(receivers))
    await harness.add(3, EventType.CAMERA_OFFLINE)
    await harness.add(2, EventType.UNKNOWN_FACE)

    page = await harness.service.list_events(after=1, limit=2)
    unknown = await harness.service.list_events(event_type="face.unknown")

    assert [r.seq for r in page.events] == [2, 3]
    assert page.next_after == 3
    assert page.head == 5
    assert [r.seq for r in unknown.events] == [4, 5]
    assert unknown.next_after is None
    with pytest.raises(NotFound):
        await harness.service.redrive("webhook:nope", None, None)
    with pytest.raises(NotFound):
        await harness.service.dead_letters(sink="nope")


# --- events written with the decisions --------------------------------------------


async def test_an_unknown_face_makes_one_event_in_the_decisions_commit(
    db: Database,
) -> None:
    people = PeopleRepository(db)
    await people.add(Person("p1", "E1", "Alice", None, PersonStatus.ACTIVE, START))
    camera = Camera("gate", "Gate", Direction.ENTRY, START)
    await CameraRepository(db).add(camera)
    woken: list[bool] = []
    service = AttendanceService(
        AttendanceRepository(db),
        people,
        _policy(),
        Clock(),
        on_events=lambda: woken.append(True),
    )
    outbox = OutboxRepository(db)

    decided = await service.decide(
        await _queued_frame(db), camera, [_face("p1", 0.95), _face("stranger", 0.3)]
    )

    outcomes = [d.outcome for d in decided.decisions]
    assert outcomes == [Outcome.MARKED, Outcome.UNKNOWN]
    events = await outbox.after(EVENTS_STREAM, 0, 10)
    assert [e.type for e in events] == ["attendance.marked", "face.unknown"]
    marked, unknown = (e.payload for e in events)
    mark = decided.decisions[0].mark
    assert mark is not None
    assert marked["mark_id"] == mark.id
    assert marked["person_id"] == "p1"
    assert "E1" not in json.dumps(marked)
    assert marked["kind"] == "check_in"
    assert unknown["decision_id"] == decided.decisions[1].id
    assert unknown["frame_id"] == decided.decisions[1].frame_id
    assert unknown["subject"] == "stranger"
    assert unknown["similarity"] == pytest.approx(0.3)
    assert woken == [True]


async def test_a_frame_decided_twice_writes_its_events_once(db: Database) -> None:
    people = PeopleRepository(db)
    camera = Camera("gate", "Gate", Direction.ENTRY, START)
    await CameraRepository(db).add(camera)
    service = AttendanceService(AttendanceRepository(db), people, _policy(), Clock())
    frame = await _queued_frame(db)

    await service.decide(frame, camera, [_face("stranger", 0.1)])
    await service.decide(frame, camera, [_face("stranger", 0.1)])

    events = await OutboxRepository(db).after(EVENTS_STREAM, 0, 10)
    assert [e.type for e in events] == ["face.unknown"]


async def _queued_frame(db: Database) -> Frame:
    now = datetime.now(UTC)
    frame = Frame(uuid.uuid4().hex, "gate", now, now, "0" * 64, 10, 10, b"")
    record = FrameRecord(frame.id, "gate", "0" * 64, 1, "jpeg", 10, 10, now, now)
    await FrameRepository(db, 0).add(record)
    return frame


def _policy() -> AttendancePolicy:
    return AttendancePolicy(
        match_threshold=0.85,
        duplicate_window=timedelta(minutes=5),
        timezone=ZoneInfo("UTC"),
        unknown_threshold=0.6,
    )


def _face(subject: str, similarity: float) -> RecognizedFace:
    return RecognizedFace(Box(0, 0, 9, 9, 1.0), (Candidate(subject, similarity),))


async def test_a_receivers_retry_after_is_honoured_within_the_cap(
    db: Database, receivers: list[WebhookReceiver]
) -> None:
    busy = receivers[0]
    busy.status = 429
    busy.answer_headers = {"Retry-After": "1"}
    harness = Harness(db, event_settings(receivers[:1], backoff_cap_s=5.0))

    async with harness.running():
        await harness.add(1)
        await eventually(lambda: len(busy.requests) >= 1)
        busy.status = 200
        await busy.wait_for_events(1, timeout_s=5.0)

    first, last = busy.requests[0].received_at, busy.requests[-1].received_at
    # The base backoff is 0.02 s: only the receiver's wish explains the pause.
    assert len(busy.requests) == 2
    assert last - first >= 0.9
