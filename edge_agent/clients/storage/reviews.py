"""Storage client: the review queue of grey-zone matches, read and resolved.

Reviews are created with their decision (see ``attendance.py``); resolving
one stores the reviewer's verdict and the mark it makes in one transaction,
and only while the review is still pending, so two reviewers acting at once
cannot both confirm it.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, replace
from datetime import datetime

from edge_agent.clients.storage.attendance import MarkEvents, NewMark, insert_mark
from edge_agent.clients.storage.database import Database
from edge_agent.clients.storage.rows import Filters, optional_time
from edge_agent.clock import from_text, to_text
from edge_agent.errors import Conflict, NotFound
from edge_agent.models import Mark, ReasonCode, Review, ReviewState

_SELECT_REVIEWS = "SELECT * FROM reviews"
_GET_REVIEW = "SELECT * FROM reviews WHERE id = ?"
_RESOLVE = """
UPDATE reviews
SET state = ?, resolved_at = ?, resolved_by = ?, comment = ?,
    confirmed_person_id = ?, result_code = ?, mark_id = ?
WHERE id = ? AND state = 'pending'
"""


@dataclass(frozen=True, slots=True)
class ReviewQuery:
    """Which reviews a listing wants; ``since``/``until`` bound the capture
    time (inclusive, exclusive); ``after_id`` is the previous page's last."""

    state: ReviewState | None = None
    camera_id: str | None = None
    person_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    after_id: int = 0
    limit: int = 100


@dataclass(frozen=True, slots=True)
class Resolution:
    """A reviewer's verdict on one review."""

    state: ReviewState
    resolved_at: datetime
    resolved_by: str
    comment: str | None
    confirmed_person_id: str | None = None
    result_code: ReasonCode | None = None


class ReviewRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, review_id: int) -> Review:
        row = await self._db.fetch_one(_GET_REVIEW, (review_id,))
        if row is None:
            raise NotFound(f"no review {review_id}")
        return _review(row)

    async def page(self, query: ReviewQuery) -> list[Review]:
        """Reviews matching ``query`` after ``query.after_id``, by id."""
        filters = _filters(query)
        sql = f"{_SELECT_REVIEWS}{filters.where()} ORDER BY id LIMIT ?"
        rows = await self._db.fetch_all(sql, (*filters.params, query.limit))
        return [_review(row) for row in rows]

    async def resolve(
        self,
        review: Review,
        resolution: Resolution,
        mark: NewMark | None,
        events: MarkEvents | None = None,
    ) -> tuple[Review, Mark | None]:
        """Settle a pending review, with the mark it makes, in one commit;
        :class:`Conflict` when someone settled it first."""
        async with self._db.transaction() as conn:
            stored = None
            if mark is not None:
                linked = replace(mark, decision_id=review.decision_id)
                stored = await insert_mark(conn, linked, events)
            cursor = await conn.execute(
                _RESOLVE, _resolution_row(review.id, resolution, stored)
            )
            if cursor.rowcount != 1:
                # Leaving the block by raising rolls the mark back too.
                raise Conflict(f"review {review.id} is already resolved")
            # Read on the writer, inside the block: it may be part of a larger
            # transaction (with its audit entry) not yet committed.
            async with conn.execute(_GET_REVIEW, (review.id,)) as rows:
                row = await rows.fetchone()
        if row is None:
            raise NotFound(f"no review {review.id}")
        return _review(row), stored


def _resolution_row(
    review_id: int, resolution: Resolution, mark: Mark | None
) -> tuple[object, ...]:
    return (
        resolution.state.value,
        to_text(resolution.resolved_at),
        resolution.resolved_by,
        resolution.comment,
        resolution.confirmed_person_id,
        resolution.result_code.value if resolution.result_code else None,
        mark.id if mark is not None else None,
        review_id,
    )


def _filters(query: ReviewQuery) -> Filters:
    filters = Filters("id > ?", params=(query.after_id,))
    filters.equal("state", query.state.value if query.state else None)
    filters.equal("camera_id", query.camera_id)
    filters.equal("person_id", query.person_id)
    filters.within("captured_at", query.since, query.until)
    return filters


def _review(row: sqlite3.Row) -> Review:
    result_code = row["result_code"]
    return Review(
        id=row["id"],
        decision_id=row["decision_id"],
        frame_id=row["frame_id"],
        camera_id=row["camera_id"],
        person_id=row["person_id"],
        subject=row["subject"],
        similarity=row["similarity"],
        captured_at=from_text(row["captured_at"]),
        created_at=from_text(row["created_at"]),
        state=ReviewState(row["state"]),
        resolved_at=optional_time(row["resolved_at"]),
        resolved_by=row["resolved_by"],
        comment=row["comment"],
        confirmed_person_id=row["confirmed_person_id"],
        result_code=ReasonCode(result_code) if result_code else None,
        mark_id=row["mark_id"],
    )
