"""Storage client: the outbox records of the attendance and decisions sync streams.

Each is written into the outbox inside the transaction of what it reports. A
mark, a correction and a decision are each shipped as a snapshot of the row as
committed. The mark names its person by id and employee number, which is
what the central office matches people across sites by; an erasure rewrites
the employee number of the person's records not yet pruned and ships a
``person.erased`` record, so the office can scrub its copy too.
"""

from __future__ import annotations

from datetime import datetime

import aiosqlite

from edge_agent.clients.storage.outbox import NewRecord, append
from edge_agent.clock import to_text
from edge_agent.models import Correction, Decision, Mark

ATTENDANCE_STREAM = "attendance"
DECISIONS_STREAM = "decisions"

_EMPLOYEE_NO = "SELECT employee_no FROM people WHERE id = ?"
_SCRUB = """
UPDATE outbox SET payload = json_set(payload, '$.employee_no', ?)
WHERE stream = ? AND json_extract(payload, '$.person_id') = ?
"""


async def mark_record(conn: aiosqlite.Connection, mark: Mark) -> NewRecord:
    """The ``mark.recorded`` record of a mark just stored on ``conn``."""
    async with conn.execute(_EMPLOYEE_NO, (mark.person_id,)) as cursor:
        row = await cursor.fetchone()
    payload = {
        "mark_id": mark.id,
        "person_id": mark.person_id,
        "employee_no": row[0] if row else None,
        "camera_id": mark.camera_id,
        "kind": mark.kind.value,
        "marked_at": to_text(mark.marked_at),
        "local_day": mark.local_day,
        "work_day": mark.work_day,
        "similarity": mark.similarity,
        "decision_id": mark.decision_id,
        "source": mark.source.value,
        "classification": mark.classification.value,
        "shift": mark.shift,
    }
    return NewRecord(ATTENDANCE_STREAM, "mark.recorded", mark.marked_at, payload)


def correction_record(correction: Correction) -> NewRecord:
    """The ``mark.add`` or ``mark.void`` record of a correction."""
    payload = {
        "correction_id": correction.id,
        "action": correction.action.value,
        "mark_id": correction.mark_id,
        "person_id": correction.person_id,
        "comment": correction.comment,
        "actor": correction.actor,
        "at": to_text(correction.created_at),
    }
    kind = f"mark.{correction.action.value}"
    return NewRecord(ATTENDANCE_STREAM, kind, correction.created_at, payload)


def decision_record(decision: Decision) -> NewRecord:
    """The ``decision.recorded`` record of a stored decision."""
    payload = {
        "decision_id": decision.id,
        "frame_id": decision.frame_id,
        "camera_id": decision.camera_id,
        "outcome": decision.outcome.value,
        "reason_code": decision.reason_code.value,
        "rule": decision.rule.value,
        "person_id": decision.person_id,
        "similarity": decision.similarity,
        "captured_at": to_text(decision.captured_at),
        "decided_at": to_text(decision.decided_at),
        "mark_id": decision.mark.id if decision.mark else None,
    }
    return NewRecord(
        DECISIONS_STREAM, "decision.recorded", decision.decided_at, payload
    )


async def person_erased(
    conn: aiosqlite.Connection, person_id: str, tombstone_no: str, at: datetime
) -> None:
    """Scrub the person's employee number from unsent records; tell the office."""
    await conn.execute(_SCRUB, (tombstone_no, ATTENDANCE_STREAM, person_id))
    payload = {"person_id": person_id, "at": to_text(at)}
    await append(conn, NewRecord(ATTENDANCE_STREAM, "person.erased", at, payload))
