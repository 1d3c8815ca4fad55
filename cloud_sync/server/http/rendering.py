"""JSON views of the office API, shared by the HTTP answers and the CLI."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cloud_sync.audit_chain import time_text
from cloud_sync.protocol import Stream
from cloud_sync.server.sites import SiteStatus
from cloud_sync.server.store.model import AttendanceRow, StreamHead


def site_status_view(status: SiteStatus) -> dict[str, Any]:
    site = status.site
    chain = status.chain
    return {
        "site_id": site.site_id,
        "name": site.name,
        "created_at": time_text(site.created_at),
        "last_contact_at": _time(site.last_contact_at),
        "clock_skew_s": site.clock_skew_s,
        "chain": {
            "state": chain.chain_state.value,
            "seq": chain.acked_seq,
            "problem": chain.chain_problem,
        },
        "streams": {
            stream.value: _head_view(status.heads.get(stream), site.site_id, stream)
            for stream in Stream
        },
    }


def attendance_view(row: AttendanceRow) -> dict[str, Any]:
    return {
        "site_id": row.site_id,
        "seq": row.seq,
        "id": row.id,
        "type": row.type,
        "occurred_at": time_text(row.occurred_at),
        "day": row.day,
        "person_id": row.person_id,
        "payload": row.payload,
    }


def _head_view(head: StreamHead | None, site_id: str, stream: Stream) -> dict[str, Any]:
    head = head or StreamHead(site_id, stream)
    return {
        "acked_seq": head.acked_seq,
        "site_head": head.site_head,
        "lag": head.lag,
        "updated_at": _time(head.updated_at),
    }


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else time_text(moment)
