"""Gateway: what each route declares about itself, read by the middlewares.

A controller states its permission (or that it is public), its body and query
models and its body size limit with :func:`endpoint`; the gateway enforces
them and the OpenAPI document is built from them. A route that declares
nothing is refused at start-up, so no route can be left open by mistake.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel

from edge_agent.gateway.rbac import Permission

HandlerT = TypeVar("HandlerT", bound=Callable[..., Any])

_SPEC_ATTRIBUTE = "__edge_endpoint__"

# Bodies of JSON routes are small; image routes say how large theirs may be.
DEFAULT_MAX_BODY_BYTES = 64 * 1024
IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")


@dataclass(frozen=True, slots=True)
class EndpointSpec:
    summary: str
    permission: Permission | None
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    image_body: bool = False
    max_body_bytes: int | None = DEFAULT_MAX_BODY_BYTES
    responses: tuple[int, ...] = (200,)
    # A public route that checks credentials itself (login): its failures
    # count against the caller's address like a bad key does.
    login: bool = False
    # The raw body types an upload route takes (besides multipart ``file``).
    media_types: tuple[str, ...] = IMAGE_TYPES

    @property
    def public(self) -> bool:
        return self.permission is None

    @property
    def checks_credentials(self) -> bool:
        """Whether credentials are looked at: private routes and login routes."""
        return not self.public or self.login


def endpoint(
    summary: str,
    *,
    permission: Permission | None,
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    image_body: bool = False,
    max_body_bytes: int | None = DEFAULT_MAX_BODY_BYTES,
    responses: tuple[int, ...] = (200,),
    login: bool = False,
    media_types: tuple[str, ...] = IMAGE_TYPES,
) -> Callable[[HandlerT], HandlerT]:
    """Declare a route's contract. ``permission=None`` makes it public.

    ``max_body_bytes=None`` means the application-wide limit (image routes).
    """
    spec = EndpointSpec(
        summary,
        permission,
        body=body,
        query=query,
        image_body=image_body,
        max_body_bytes=max_body_bytes,
        responses=responses,
        login=login,
        media_types=media_types,
    )

    def mark(handler: HandlerT) -> HandlerT:
        setattr(handler, _SPEC_ATTRIBUTE, spec)
        return handler

    return mark


def spec_of(handler: object) -> EndpointSpec | None:
    spec = getattr(handler, _SPEC_ATTRIBUTE, None)
    return spec if isinstance(spec, EndpointSpec) else None


def route_spec(request: web.Request) -> EndpointSpec | None:
    """The spec of the route a request matched; None when none matched (404,
    405), so that those requests go on to produce their own error."""
    if request.match_info.http_exception is not None:
        return None
    return spec_of(request.match_info.handler)


def check_every_route_declared(app: web.Application) -> None:
    """Refuse to start an app with a route that has no :func:`endpoint`."""
    for route in app.router.routes():
        if route.method == "HEAD":
            continue
        if spec_of(route.handler) is None:
            raise RuntimeError(
                f"route {route.method} {route.resource} declares no endpoint spec"
            )
