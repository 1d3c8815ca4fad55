"""Controllers: how domain records look on the wire (JSON)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from cloud_sync.audit_chain import wire_entry
from edge_agent.clients.storage.cameras import CameraStatus, window_to_json
from edge_agent.clients.storage.deliveries import DeadLetter
from edge_agent.clients.storage.frames import FrameRecord
from edge_agent.clients.storage.outbox import OutboxRecord
from edge_agent.clock import to_text
from edge_agent.imaging.video import display_url
from edge_agent.models import (
    AttendanceRow,
    AuditEntry,
    Camera,
    Correction,
    DailyRow,
    Decision,
    FaceExample,
    Mark,
    MarkSource,
    Person,
    Review,
    Shift,
    ShiftAssignment,
)
from edge_agent.services.erasure import Erasure
from edge_agent.services.events import SINK_PREFIX, Redrive, SinkStatus
from edge_agent.services.ingestion import FrameOutcome
from edge_agent.services.people import format_validity
from edge_agent.services.rules import weekday_names
from edge_agent.services.status import (
    CameraLine,
    DayCounts,
    RecognizerLine,
    StatusSnapshot,
)
from edge_agent.services.streams import Stream
from edge_agent.services.sync import StreamStatus


def person(p: Person) -> dict[str, Any]:
    return {
        "id": p.id,
        "employee_no": p.employee_no,
        "name": p.name,
        "department": p.department,
        "status": p.status.value,
        "created_at": to_text(p.created_at),
        "valid_from": format_validity(p.valid_from),
        "valid_until": format_validity(p.valid_until),
        "erased_at": _optional_time(p.erased_at),
    }


def face(f: FaceExample) -> dict[str, Any]:
    return {
        "id": f.id,
        "person_id": f.person_id,
        "image_sha256": f.image_sha256,
        "enrolled_at": to_text(f.enrolled_at),
        "example_id": f.example_id,
        "enrolled_by": f.enrolled_by,
    }


def erasure(e: Erasure) -> dict[str, Any]:
    return {
        "person": person(e.person),
        "face_links_removed": e.face_links_removed,
        "recognizer_examples_removed": e.recognizer_examples_removed,
    }


def camera(c: Camera) -> dict[str, Any]:
    """A camera; a probe URL's password and query values are masked."""
    return {
        "id": c.id,
        "name": c.name,
        "direction": c.direction.value,
        "location": c.location,
        "enabled": c.enabled,
        "expected_interval_s": c.expected_interval_s,
        "match_threshold": c.match_threshold,
        "probe_url": display_url(c.probe_url) if c.probe_url else None,
        "schedule": [window_to_json(w) for w in c.schedule],
        "created_at": to_text(c.created_at),
        "updated_at": _optional_time(c.updated_at),
    }


def camera_status(status: CameraStatus) -> dict[str, Any]:
    """A camera and its latest health view; ``state`` is null before the
    health monitor first judged it, or when it is not watched."""
    c, health = status.camera, status.health
    view: dict[str, Any] = {
        "camera_id": c.id,
        "name": c.name,
        "location": c.location,
        "enabled": c.enabled,
        "state": None,
        "since": None,
        "last_frame_at": None,
        "last_probe_at": None,
        "last_error": None,
        "grade": None,
        "activity": {},
    }
    if health is not None:
        view.update(
            state=health.state,
            since=to_text(health.since),
            last_frame_at=_optional_time(health.last_frame_at),
            last_probe_at=_optional_time(health.last_probe_at),
            last_error=health.last_error,
            grade=health.activity.get("grade"),
            activity=health.activity,
            updated_at=to_text(health.updated_at),
        )
    return view


def _optional_time(moment: datetime | None) -> str | None:
    return to_text(moment) if moment is not None else None


def mark(m: Mark) -> dict[str, Any]:
    return {
        "id": m.id,
        "person_id": m.person_id,
        "camera_id": m.camera_id,
        "kind": m.kind.value,
        "marked_at": to_text(m.marked_at),
        "local_day": m.local_day,
        "work_day": m.counts_for,
        "similarity": m.similarity,
        "classification": m.classification.value,
        "shift": m.shift,
        "source": m.source.value,
        "manual": m.source is MarkSource.MANUAL,
        "voided": m.voided,
        "decision_id": m.decision_id,
    }


def attendance_row(row: AttendanceRow) -> dict[str, Any]:
    return {**mark(row.mark), "employee_no": row.employee_no, "name": row.name}


def decision(d: Decision, people: dict[str, Person]) -> dict[str, Any]:
    who = people.get(d.person_id) if d.person_id else None
    return {
        "id": d.id,
        "frame_id": d.frame_id,
        "camera_id": d.camera_id,
        "outcome": d.outcome.value,
        "reason_code": d.reason_code.value,
        "rule": d.rule.value,
        "reason": d.reason,
        "person": (
            {"id": who.id, "employee_no": who.employee_no, "name": who.name}
            if who
            else None
        ),
        "subject": d.subject,
        "similarity": d.similarity,
        "mark": mark(d.mark) if d.mark else None,
        "review_id": d.review_id,
        "captured_at": to_text(d.captured_at),
        "decided_at": to_text(d.decided_at),
    }


def daily(row: DailyRow) -> dict[str, Any]:
    return {
        "person_id": row.person_id,
        "employee_no": row.employee_no,
        "name": row.name,
        "day": row.day.isoformat(),
        "shift": row.shift,
        "scheduled": row.scheduled,
        "first_in": _optional_time(row.first_in),
        "last_out": _optional_time(row.last_out),
        "worked_s": int(row.worked.total_seconds()),
        "status": row.status.value,
        "late": row.late,
        "early_exit": row.early_exit,
        "missing_check_out": row.missing_check_out,
        "manual": row.manual,
        "marks": row.marks,
    }


def correction(c: Correction) -> dict[str, Any]:
    return {
        "id": c.id,
        "action": c.action.value,
        "mark_id": c.mark_id,
        "person_id": c.person_id,
        "comment": c.comment,
        "actor": c.actor,
        "created_at": to_text(c.created_at),
    }


def review(r: Review) -> dict[str, Any]:
    return {
        "id": r.id,
        "state": r.state.value,
        "decision_id": r.decision_id,
        "frame_id": r.frame_id,
        "camera_id": r.camera_id,
        "person_id": r.person_id,
        "subject": r.subject,
        "similarity": r.similarity,
        "captured_at": to_text(r.captured_at),
        "created_at": to_text(r.created_at),
        "resolved_at": _optional_time(r.resolved_at),
        "resolved_by": r.resolved_by,
        "comment": r.comment,
        "confirmed_person_id": r.confirmed_person_id,
        "result_code": r.result_code.value if r.result_code else None,
        "mark_id": r.mark_id,
    }


def audit_entry(entry: AuditEntry) -> dict[str, Any]:
    """One entry on the wire, with both hashes so a reader can check the links."""
    return wire_entry(entry)


def shift_view(shift: Shift) -> dict[str, Any]:
    return {
        "name": shift.name,
        "days": weekday_names(shift.days),
        "start": shift.start.isoformat(timespec="minutes"),
        "end": shift.end.isoformat(timespec="minutes"),
        "crosses_midnight": shift.crosses_midnight,
        "checkin_before_min": _minutes(shift.checkin_before),
        "checkout_after_min": _minutes(shift.checkout_after),
        "late_grace_min": _minutes(shift.late_grace),
        "early_exit_grace_min": _minutes(shift.early_exit_grace),
        "half_day_hours": shift.half_day_below.total_seconds() / 3600,
        "absent_hours": shift.absent_below.total_seconds() / 3600,
        "created_at": to_text(shift.created_at),
    }


def assignment_view(assignment: ShiftAssignment) -> dict[str, Any]:
    shift = assignment.shift
    return {
        "person_id": assignment.person_id,
        "shift": shift.name if shift is not None else None,
        "effective_from": assignment.effective_from.isoformat(),
        "assigned_at": to_text(assignment.assigned_at),
        "assigned_by": assignment.assigned_by,
    }


def _minutes(duration: timedelta) -> int:
    return int(duration.total_seconds() // 60)


def frame_record(record: FrameRecord) -> dict[str, Any]:
    return {
        "frame_id": record.id,
        "camera_id": record.camera_id,
        "state": record.state,
        "format": record.format,
        "width": record.width,
        "height": record.height,
        "size_bytes": record.size_bytes,
        "sha256": record.sha256,
        "captured_at": to_text(record.captured_at),
        "received_at": to_text(record.received_at),
        "camera_seq": record.camera_seq,
        "clock_skew_s": record.clock_skew_s,
        "decided_at": _optional_time(record.decided_at),
        "status_url": f"/v1/frames/{record.id}",
    }


def frame_outcome(outcome: FrameOutcome) -> dict[str, Any]:
    return {
        **frame_record(outcome.record),
        "duplicate_of": outcome.duplicate_of,
        "decisions": [decision(d, outcome.people) for d in outcome.decisions],
    }


def stream(s: Stream) -> dict[str, Any]:
    """A stream; its URL's credentials never leave the appliance."""
    return {
        "id": s.id,
        "camera_id": s.camera_id,
        "url": display_url(s.url),
        "sample_every_s": s.sample_every_s,
        "enabled": s.enabled,
        "state": s.state.value,
        "last_error": s.last_error,
        "last_frame_at": _optional_time(s.last_frame_at),
        "created_at": to_text(s.created_at),
    }


def outbox_event(record: OutboxRecord) -> dict[str, Any]:
    """An event as listed: the envelope sinks send, without the site id."""
    return {
        "id": record.id,
        "seq": record.seq,
        "type": record.type,
        "occurred_at": to_text(record.occurred_at),
        "payload": record.payload,
    }


def sink_status(status: SinkStatus) -> dict[str, Any]:
    return {
        "name": status.name,
        "consumer": status.consumer,
        "configured": status.configured,
        "cursor": status.position,
        "head": status.head,
        "lag": status.lag,
        "attempts": status.attempts,
        "last_error": status.last_error,
        "last_success_at": _optional_time(status.last_success_at),
        "dead_letters": status.dead_letters,
    }


def dead_letter(letter: DeadLetter) -> dict[str, Any]:
    return {
        "sink": letter.consumer.removeprefix(SINK_PREFIX),
        "seq": letter.seq,
        "attempts": letter.attempts,
        "reason": letter.reason,
        "state": letter.state.value,
        "dead_at": to_text(letter.dead_at),
        "updated_at": to_text(letter.updated_at),
    }


def redrive(result: Redrive) -> dict[str, Any]:
    return {"sink": result.sink, "queued": result.queued}


def sync_stream(status: StreamStatus) -> dict[str, Any]:
    return {
        "stream": status.stream,
        "state": status.state,
        "head": status.head,
        "acked": status.acked,
        "lag_records": status.lag_records,
        "lag_s": None if status.lag_s is None else round(status.lag_s, 3),
        "last_error": status.last_error,
        "last_success_at": _optional_time(status.last_success_at),
        "dead_letters": status.dead_letters,
    }


def sync_overview(enabled: bool, streams: Iterable[StreamStatus]) -> dict[str, Any]:
    return {"enabled": enabled, "streams": [sync_stream(s) for s in streams]}


def sync_dead_letter(letter: DeadLetter) -> dict[str, Any]:
    return {
        "stream": letter.stream,
        "seq": letter.seq,
        "reason": letter.reason,
        "state": letter.state.value,
        "dead_at": to_text(letter.dead_at),
    }


def status_snapshot(snapshot: StatusSnapshot) -> dict[str, Any]:
    """The status page's content; times in UTC, the site's zone named."""
    return {
        "at": to_text(snapshot.at),
        "site_id": snapshot.site_id,
        "timezone": snapshot.timezone.key,
        "today": day_counts(snapshot.today),
        "cameras": [camera_line(c) for c in snapshot.cameras],
        "recognizer": recognizer_line(snapshot.recognizer),
        "sync": sync_overview(snapshot.sync.enabled, snapshot.sync.streams),
    }


def day_counts(counts: DayCounts) -> dict[str, Any]:
    return {
        "day": counts.day.isoformat(),
        "present": counts.present,
        "late": counts.late,
        "half_day": counts.half_day,
        "absent": counts.absent,
        "off": counts.off,
        "marks": counts.marks,
    }


def camera_line(line: CameraLine) -> dict[str, Any]:
    return {
        "camera_id": line.id,
        "name": line.name,
        "location": line.location,
        "enabled": line.enabled,
        "state": line.state,
        "since": _optional_time(line.since),
        "last_frame_at": _optional_time(line.last_frame_at),
        "frames_last_minute": line.frames_last_minute,
        "grade": line.grade,
    }


def recognizer_line(line: RecognizerLine) -> dict[str, Any]:
    return {
        "ready": line.ready,
        "breaker": line.breaker,
        "database": line.database,
        "reasons": list(line.reasons),
        "spool_frames": line.spool_frames,
        "spool_bytes": line.spool_bytes,
    }


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status)
