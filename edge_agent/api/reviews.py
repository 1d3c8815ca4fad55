"""Controllers: the review queue of grey-zone matches (``/v1/reviews``)."""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, model_validator

from edge_agent.api import rendering
from edge_agent.api.attendance import DAY_HELP, Day, resolve_day
from edge_agent.api.keys import services
from edge_agent.errors import NotFound
from edge_agent.gateway.context import PRINCIPAL
from edge_agent.gateway.rbac import Permission
from edge_agent.gateway.routing import endpoint
from edge_agent.gateway.validation import parse_json, parse_query
from edge_agent.models import ReviewState
from edge_agent.services.attendance import MAX_PAGE_SIZE
from edge_agent.services.reviews import ReviewAction, ReviewFilter

routes = web.RouteTableDef()


class ReviewsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: ReviewState | Literal["all"] = ReviewState.PENDING
    camera: str | None = None
    person: str | None = Field(default=None, description="id or employee number")
    day: Day | None = Field(default=None, description=DAY_HELP + ", capture time")
    cursor: int | None = Field(
        default=None, ge=0, description="the next_cursor of the previous page"
    )
    limit: int = Field(default=100, ge=1, le=MAX_PAGE_SIZE)


class ReviewVerdict(BaseModel):
    """``confirm`` (as the proposed person, or as ``person_id``) or ``reject``
    (with a ``comment`` saying why)."""

    model_config = ConfigDict(extra="forbid")

    action: ReviewAction
    person_id: str | None = Field(
        default=None, max_length=64, description="id or employee number"
    )
    comment: str | None = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _fits_the_action(self) -> ReviewVerdict:
        if self.action is ReviewAction.REJECT:
            if not (self.comment or "").strip():
                raise ValueError("reject needs a comment saying why")
            if self.person_id is not None:
                raise ValueError("reject takes no person_id")
        return self


@routes.get("/v1/reviews")
@endpoint(
    "List grey-zone matches waiting for, or settled by, a reviewer",
    permission=Permission.ATTENDANCE_READ,
    query=ReviewsQuery,
)
async def list_reviews(request: web.Request) -> web.Response:
    query = parse_query(request, ReviewsQuery)
    filters = ReviewFilter(
        state=None if query.state == "all" else query.state,
        camera_id=query.camera,
        person=query.person,
        day=resolve_day(services(request).attendance, query.day),
    )
    page = await services(request).reviews.list_reviews(
        filters, query.cursor, query.limit
    )
    return rendering.json_response(
        {
            "reviews": [rendering.review(r) for r in page.reviews],
            "next_cursor": page.next_cursor,
        }
    )


@routes.post("/v1/reviews/{id}")
@endpoint(
    "Confirm or reject a grey-zone match; confirming marks as of the frame",
    permission=Permission.USERS_WRITE,
    body=ReviewVerdict,
)
async def resolve_review(request: web.Request) -> web.Response:
    body = await parse_json(request, ReviewVerdict)
    review_id = _review_id(request.match_info["id"])
    result = await services(request).reviews.resolve(
        review_id,
        body.action,
        person=body.person_id,
        comment=body.comment,
        actor=request[PRINCIPAL],
    )
    return rendering.json_response(
        {
            "review": rendering.review(result.review),
            "mark": rendering.mark(result.mark) if result.mark else None,
            "reason": result.reason,
        }
    )


def _review_id(text: str) -> int:
    # Any text reaches the handler so that the gateway authorizes it first.
    if not text.isdigit():
        raise NotFound(f"no review {text!r}")
    return int(text)
