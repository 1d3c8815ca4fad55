"""Health service: is the appliance ready to decide frames now, and if not, why."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from edge_agent.clients.recognition.resilient import ResilientRecognizer
from edge_agent.clients.storage.database import Database
from edge_agent.services.pipeline import FramePipeline

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Readiness:
    """The verdict, what each check found, and why it is not ready."""

    ready: bool
    checks: dict[str, Any] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "status": "ready" if self.ready else "not_ready",
            "reasons": self.reasons,
            "checks": self.checks,
        }


class HealthService:
    def __init__(
        self, db: Database, pipeline: FramePipeline, recognizer: ResilientRecognizer
    ) -> None:
        self._db = db
        self._pipeline = pipeline
        self._recognizer = recognizer

    async def readiness(self) -> Readiness:
        """Ready when the database answers and the recognizer's circuit is
        not open; the spool's backlog is reported, not judged."""
        reasons: list[str] = []
        checks: dict[str, Any] = {
            "spool_frames": self._pipeline.backlog.frames,
            "spool_bytes": self._pipeline.backlog.bytes,
        }
        checks["database"] = await self._database(reasons)
        checks["recognizer"] = self._breaker(reasons)
        return Readiness(not reasons, checks, reasons)

    async def _database(self, reasons: list[str]) -> str:
        try:
            await self._db.fetch_one("SELECT 1")
        except Exception as exc:
            logger.warning("Readiness: database check failed: %r", exc)
            reasons.append("the database does not answer")
            return "error"
        return "ok"

    def _breaker(self, reasons: list[str]) -> str:
        state = self._recognizer.state
        if state == "open":
            why = self._recognizer.opened_reason or "failures"
            reasons.append(f"the recognizer circuit is open: {why}")
        return str(state)
