"""Review service: grey-zone matches confirmed or rejected, audited. Service layer.

A confirmation is judged like a fresh sighting as of the frame's capture time
(the person's status and validity, the camera's direction, the duplicate
window), so a confirmed match is marked exactly as a confident one would
have been, or is told why it is not.

The frame's image is not kept for the reviewer: the spool removes a frame's
file once it is decided, so a reviewer sees the camera, the time, the
proposed person and the similarity, but not the picture. Showing it needs a
retention folder for the frames of open reviews, which does not exist yet.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from datetime import date

from edge_agent.clients.storage.cameras import CameraRepository
from edge_agent.clients.storage.reviews import Resolution, ReviewQuery, ReviewRepository
from edge_agent.clock import Clock
from edge_agent.errors import Conflict, InvalidInput, NotFound
from edge_agent.models import (
    Camera,
    Mark,
    Person,
    Principal,
    Review,
    ReviewState,
)
from edge_agent.services.attendance import AttendanceService
from edge_agent.services.audit import AuditAction, AuditService
from edge_agent.services.paging import check_limit, split_page
from edge_agent.services.rules import day_bounds

logger = logging.getLogger(__name__)


class ReviewAction(enum.StrEnum):
    CONFIRM = "confirm"
    REJECT = "reject"


@dataclass(frozen=True, slots=True)
class ReviewFilter:
    """Which reviews a listing wants; ``person`` is an id or employee number,
    ``day`` the site-local day of the capture time."""

    state: ReviewState | None = None
    camera_id: str | None = None
    person: str | None = None
    day: date | None = None


@dataclass(frozen=True, slots=True)
class ReviewPage:
    reviews: list[Review]
    next_cursor: int | None


@dataclass(frozen=True, slots=True)
class ReviewResult:
    """A settled review, the mark it made, and in words why it made none."""

    review: Review
    mark: Mark | None
    reason: str


class ReviewService:
    def __init__(
        self,
        reviews: ReviewRepository,
        attendance: AttendanceService,
        cameras: CameraRepository,
        audit: AuditService,
        clock: Clock,
    ) -> None:
        self._reviews = reviews
        self._attendance = attendance
        self._cameras = cameras
        self._audit = audit
        self._clock = clock

    async def list_reviews(
        self, filters: ReviewFilter, cursor: int | None, limit: int
    ) -> ReviewPage:
        """Reviews oldest first, after ``cursor`` (the last id of a page)."""
        check_limit(limit)
        query = await self._query(filters, cursor or 0, limit + 1)

        found = await self._reviews.page(query)
        return ReviewPage(*split_page(found, limit, lambda review: review.id))

    async def resolve(
        self,
        review_id: int,
        action: ReviewAction,
        *,
        person: str | None,
        comment: str | None,
        actor: Principal,
    ) -> ReviewResult:
        """Confirm (as the proposed person, or as ``person``) or reject a
        pending review; rejecting needs a comment."""
        review = await self._reviews.get(review_id)
        if review.state is not ReviewState.PENDING:
            raise Conflict(f"review {review_id} is already {review.state.value}")
        comment = (comment or "").strip() or None

        if action is ReviewAction.REJECT:
            return await self._reject(review, comment, actor)
        return await self._confirm(review, person, comment, actor)

    async def _reject(
        self, review: Review, comment: str | None, actor: Principal
    ) -> ReviewResult:
        if comment is None:
            raise InvalidInput("rejecting a review needs a comment")
        resolution = Resolution(
            ReviewState.REJECTED, self._clock.now(), actor.label, comment
        )
        async with self._audit.atomic():
            stored, _ = await self._reviews.resolve(review, resolution, None)
            result = ReviewResult(stored, None, "rejected by the reviewer")
            await self._audit_resolution(result, ReviewAction.REJECT, actor)
        return result

    async def _confirm(
        self,
        review: Review,
        person_ref: str | None,
        comment: str | None,
        actor: Principal,
    ) -> ReviewResult:
        person = await self._person(review, person_ref)
        camera = await self._camera(review.camera_id)
        async with self._attendance.marking():
            verdict, mark = await self._attendance.plan_reviewed(review, person, camera)
            resolution = Resolution(
                ReviewState.CONFIRMED,
                self._clock.now(),
                actor.label,
                comment,
                confirmed_person_id=person.id,
                result_code=verdict.code,
            )
            async with self._audit.atomic():
                stored, made = await self._reviews.resolve(
                    review, resolution, mark, self._attendance.mark_events
                )
                result = ReviewResult(stored, made, verdict.reason)
                await self._audit_resolution(result, ReviewAction.CONFIRM, actor)
        if made is not None:
            self._attendance.events_written()
        return result

    async def _person(self, review: Review, reference: str | None) -> Person:
        chosen = reference or review.person_id
        if chosen is None:
            raise InvalidInput("the review proposes nobody: name the person_id")
        return await self._attendance.find_person(chosen)

    async def _camera(self, camera_id: str) -> Camera:
        camera = await self._cameras.find(camera_id)
        if camera is None:
            raise NotFound(f"no camera {camera_id!r}")
        return camera

    async def _query(
        self, filters: ReviewFilter, after_id: int, limit: int
    ) -> ReviewQuery:
        person_id = None
        if filters.person is not None:
            person_id = (await self._attendance.find_person(filters.person)).id
        since = until = None
        if filters.day is not None:
            since, until = day_bounds(filters.day, self._attendance.policy.timezone)
        return ReviewQuery(
            filters.state, filters.camera_id, person_id, since, until, after_id, limit
        )

    async def _audit_resolution(
        self, result: ReviewResult, action: ReviewAction, actor: Principal
    ) -> None:
        review = result.review
        code = review.result_code
        await self._audit.record(
            actor,
            AuditAction.ATTENDANCE_REVIEWED,
            target=f"review:{review.id}",
            details={
                "action": action.value,
                "decision_id": review.decision_id,
                "person_id": review.confirmed_person_id or review.person_id,
                "result": code.value if code else None,
                "mark_id": result.mark.id if result.mark else None,
                "comment": review.comment,
            },
        )
        logger.info(
            "Review %d %s by %s: %s",
            review.id,
            review.state.value,
            actor.label,
            code.value if code else "-",
        )
