"""Self-check service: the appliance watching itself (disk, spool, recognizer,
clock, database, sync), with hysteresis and one event per raise and clear.

A check raises its anomaly after ``raise_after`` consecutive failing runs and
clears it after ``clear_after`` consecutive passing ones; exactly one
``system.anomaly`` is written when it raises and one ``system.recovered`` when
it clears, in the transaction that stores the check's ``self_checks`` row.
The in-memory counters advance only once that transaction commits, so a
failed write is retried at the next run rather than losing its event.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from edge_agent.clients.storage.health import HealthRepository, SelfCheckRow
from edge_agent.clients.storage.outbox import NewRecord
from edge_agent.clock import Clock
from edge_agent.config import MonitorSettings, SpoolSettings
from edge_agent.models import EVENTS_STREAM, EventType
from edge_agent.services.pipeline import Backlog

logger = logging.getLogger(__name__)

FAILING = "failing"
OK = "ok"


class DiskUsage(NamedTuple):
    total: int
    used: int
    free: int


class BreakerView(Protocol):
    """What the checks read of the resilient recognizer."""

    @property
    def state(self) -> str: ...


SyncLag = Callable[[], Awaitable[float | None]]


@dataclass(frozen=True, slots=True)
class SelfCheckSources:
    """What the checks look at. ``sync_lag_s`` answers the age in seconds of
    the oldest unsent record; it is ``None``, or answers ``None``, when no
    sync is configured, and the check is then skipped."""

    data_dir: Path
    spool: SpoolSettings
    backlog: Backlog
    recognizer: BreakerView
    sync_lag_s: SyncLag | None = None
    disk_usage: Callable[[Path], DiskUsage] = field(
        default=lambda path: DiskUsage(*shutil.disk_usage(path))
    )


@dataclass(frozen=True, slots=True)
class CheckResult:
    passed: bool
    detail: str
    value: float | None = None
    threshold: float | None = None


@dataclass(slots=True)
class _CheckState:
    raised: bool
    since: datetime
    failures: int = 0
    passes: int = 0


class _ClockBaseline(NamedTuple):
    wall: float
    monotonic: float


class SelfCheckJob:
    """One run of every check; :meth:`run` is the scheduler's job."""

    def __init__(
        self,
        health: HealthRepository,
        sources: SelfCheckSources,
        settings: MonitorSettings,
        clock: Clock,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        on_events: Callable[[], None] | None = None,
    ) -> None:
        self._health = health
        self._sources = sources
        self._settings = settings
        self._clock = clock
        self._monotonic = monotonic
        self._on_events = on_events
        self._states: dict[str, _CheckState] | None = None
        self._baseline: _ClockBaseline | None = None
        self._write_failed = False

    async def run(self) -> list[NewRecord]:
        """Run every check, store the outcome, return the events written."""
        now = self._clock.now()
        states = self._states if self._states is not None else await self._load(now)
        results = await self._results()

        updated = dict(states)
        rows: list[SelfCheckRow] = []
        events: list[NewRecord] = []
        for name, result in results.items():
            state, event = self._advance(name, states.get(name), result, now)
            updated[name] = state
            rows.append(_row(name, state, result, now))
            if event is not None:
                events.append(event)

        try:
            await self._health.save_checks(rows, events)
        except Exception:
            logger.exception("Self-check results could not be stored")
            self._write_failed = True
            return []
        self._write_failed = False
        self._states = updated
        self._rebase_clock(results.get("clock"), updated.get("clock"))
        if events and self._on_events is not None:
            self._on_events()
        return events

    async def _load(self, now: datetime) -> dict[str, _CheckState]:
        """Checks raised before a restart stay raised, so none is raised twice."""
        try:
            rows = await self._health.self_checks()
        except Exception:
            logger.exception("Stored self-checks could not be read")
            rows = []
        return {
            row.name: _CheckState(raised=row.state == FAILING, since=row.since)
            for row in rows
        }

    async def _results(self) -> dict[str, CheckResult]:
        checks: dict[str, Callable[[], Awaitable[CheckResult | None]]] = {
            "disk": self._disk,
            "spool": self._spool,
            "recognizer": self._recognizer,
            "clock": self._clock_jump,
            "database": self._database,
            "sync": self._sync,
        }
        results: dict[str, CheckResult] = {}
        for name, check in checks.items():
            try:
                result = await check()
            except Exception as exc:
                result = CheckResult(False, f"the check failed: {exc!r}")
            if result is not None:
                results[name] = result
        return results

    def _advance(
        self,
        name: str,
        previous: _CheckState | None,
        result: CheckResult,
        now: datetime,
    ) -> tuple[_CheckState, NewRecord | None]:
        state = _CheckState(False, now) if previous is None else replace(previous)
        if result.passed:
            state.passes, state.failures = state.passes + 1, 0
            if state.raised and state.passes >= self._settings.clear_after:
                state.raised, state.since = False, now
                return state, _event(EventType.SYSTEM_RECOVERED, name, result, now)
        else:
            state.failures, state.passes = state.failures + 1, 0
            if not state.raised and state.failures >= self._settings.raise_after:
                state.raised, state.since = True, now
                logger.warning("Self-check %s raised: %s", name, result.detail)
                return state, _event(EventType.SYSTEM_ANOMALY, name, result, now)
        return state, None

    async def _disk(self) -> CheckResult:
        usage = await asyncio.to_thread(self._usage)
        free = 100.0 * usage.free / usage.total if usage.total else 0.0
        limit = self._settings.min_free_disk_percent
        detail = f"{free:.1f}% free under the data folder (at least {limit:g}%)"
        return CheckResult(free >= limit, detail, round(free, 2), limit)

    async def _spool(self) -> CheckResult:
        backlog, spool = self._sources.backlog, self._sources.spool
        ratio = max(backlog.frames / spool.max_frames, backlog.bytes / spool.max_bytes)
        limit = self._settings.spool_backlog_ratio
        detail = (
            f"the spool holds {backlog.frames} frames, {backlog.bytes} bytes: "
            f"{ratio:.0%} of its limit (anomaly from {limit:.0%})"
        )
        return CheckResult(ratio < limit, detail, round(ratio, 4), limit)

    async def _recognizer(self) -> CheckResult:
        state = self._sources.recognizer.state
        detail = f"the recognizer circuit breaker is {state}"
        return CheckResult(state != "open", detail)

    async def _clock_jump(self) -> CheckResult | None:
        wall, mono = self._clock.now().timestamp(), self._monotonic()
        baseline = self._baseline
        if baseline is None:
            self._baseline = _ClockBaseline(wall, mono)
            return None
        offset = (wall - baseline.wall) - (mono - baseline.monotonic)
        limit = self._settings.clock_jump_s
        detail = f"the wall clock moved {offset:+.1f} s against the monotonic clock"
        return CheckResult(abs(offset) <= limit, detail, round(offset, 3), limit)

    def _rebase_clock(
        self, result: CheckResult | None, state: _CheckState | None
    ) -> None:
        # The baseline follows the clocks while they agree; after a jump it
        # holds until the anomaly is raised, then takes the new time as right,
        # so that the check clears instead of failing for ever.
        if result is None or state is None:
            return
        if result.passed or state.raised:
            self._baseline = _ClockBaseline(
                self._clock.now().timestamp(), self._monotonic()
            )

    async def _database(self) -> CheckResult:
        try:
            await self._health.ping()
        except Exception as exc:
            return CheckResult(False, f"a database query failed: {exc!r}")
        if self._write_failed:
            return CheckResult(False, "the last health write to the database failed")
        return CheckResult(True, "the database answers")

    async def _sync(self) -> CheckResult | None:
        provider = self._sources.sync_lag_s
        lag = None if provider is None else await provider()
        if lag is None:
            return None
        limit = self._settings.sync_lag_s
        detail = f"the oldest unsent record is {lag:.0f} s old (at most {limit:g} s)"
        return CheckResult(lag <= limit, detail, round(lag, 1), limit)

    def _usage(self) -> DiskUsage:
        """Blocking: the usage of the data folder, or of its nearest existing
        parent (a fresh data folder may not exist yet)."""
        path = self._sources.data_dir
        while not path.exists() and path.parent != path:
            path = path.parent
        return self._sources.disk_usage(path)


def _row(
    name: str, state: _CheckState, result: CheckResult, now: datetime
) -> SelfCheckRow:
    return SelfCheckRow(
        name=name,
        state=FAILING if state.raised else OK,
        since=state.since,
        updated_at=now,
        detail=result.detail,
    )


def _event(kind: EventType, name: str, result: CheckResult, now: datetime) -> NewRecord:
    payload: dict[str, Any] = {
        "check": name,
        "detail": result.detail,
        "value": result.value,
        "threshold": result.threshold,
    }
    return NewRecord(EVENTS_STREAM, kind.value, now, payload)
