"""Office service: attendance across sites, page by page or as CSV."""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Final

from cloud_sync.audit_chain import canonical_json, time_text
from cloud_sync.server.errors import InvalidRequest
from cloud_sync.server.store.model import (
    AttendanceCursor,
    AttendanceQuery,
    AttendanceRow,
    Store,
)

MAX_PAGE_SIZE: Final = 1000
# Rows fetched per query while exporting.
_EXPORT_PAGE: Final = 500
CSV_COLUMNS: Final = (
    "site_id",
    "seq",
    "id",
    "type",
    "occurred_at",
    "day",
    "person_id",
    "payload",
)


@dataclass(frozen=True, slots=True)
class AttendanceFilter:
    site_id: str | None = None
    person_id: str | None = None
    day_from: str | None = None
    day_to: str | None = None


@dataclass(frozen=True, slots=True)
class AttendancePage:
    rows: list[AttendanceRow]
    next_cursor: str | None


class OfficeService:
    """Reads the attendance of every site for the office, oldest first."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def attendance_page(
        self, filters: AttendanceFilter, cursor: str | None, limit: int
    ) -> AttendancePage:
        """Rows after ``cursor``, oldest first; ``next_cursor`` ``None`` on the last."""
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise InvalidRequest(f"limit must be between 1 and {MAX_PAGE_SIZE}")
        query = _query(filters, decode_cursor(cursor) if cursor else None, limit + 1)

        # One row beyond the page tells whether another page exists.
        rows = await self._store.attendance(query)
        page = rows[:limit]
        more = len(rows) > limit
        return AttendancePage(page, encode_cursor(page[-1].cursor) if more else None)

    def iter_attendance(
        self, filters: AttendanceFilter
    ) -> AsyncIterator[AttendanceRow]:
        """Every matching row, oldest first, fetched a page at a time.

        The filters are checked now, before the first row is asked for, so a
        caller can refuse a bad request before it starts streaming an answer.
        """
        return self._pages(_query(filters, None, _EXPORT_PAGE))

    async def _pages(self, query: AttendanceQuery) -> AsyncIterator[AttendanceRow]:
        while True:
            rows = await self._store.attendance(query)
            for row in rows:
                yield row
            if len(rows) < query.limit:
                return
            query = replace(query, after=rows[-1].cursor)


def _query(
    filters: AttendanceFilter, after: AttendanceCursor | None, limit: int
) -> AttendanceQuery:
    for day in (filters.day_from, filters.day_to):
        if day is not None:
            _check_day(day)
    return AttendanceQuery(
        site_id=filters.site_id,
        person_id=filters.person_id,
        day_from=filters.day_from,
        day_to=filters.day_to,
        after=after,
        limit=limit,
    )


def _check_day(day: str) -> None:
    try:
        date.fromisoformat(day)
    except ValueError as exc:
        raise InvalidRequest(f"{day!r} is not a day (YYYY-MM-DD)") from exc


def encode_cursor(cursor: AttendanceCursor) -> str:
    """An opaque cursor text for the row that ends a page."""
    text = json.dumps([time_text(cursor.occurred_at), cursor.site_id, cursor.seq])
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(text: str) -> AttendanceCursor:
    try:
        padded = text + "=" * (-len(text) % 4)
        moment, site_id, seq = json.loads(base64.urlsafe_b64decode(padded))
        return AttendanceCursor(datetime.fromisoformat(moment), str(site_id), int(seq))
    except (ValueError, TypeError, binascii.Error) as exc:
        raise InvalidRequest("cursor is not one this server issued") from exc


def csv_header() -> str:
    return _csv_line(CSV_COLUMNS)


def csv_line(row: AttendanceRow) -> str:
    """One CSV line of ``row``; the payload goes in as canonical JSON.

    Values are written as received: a site-sent value starting with ``=`` or
    ``+`` is not neutralised, so a spreadsheet that evaluates formulas on
    opening the file would evaluate it.
    """
    return _csv_line(
        (
            row.site_id,
            str(row.seq),
            row.id,
            row.type,
            time_text(row.occurred_at),
            row.day,
            row.person_id or "",
            canonical_json(row.payload),
        )
    )


def _csv_line(values: Iterable[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(values)
    return buffer.getvalue()
