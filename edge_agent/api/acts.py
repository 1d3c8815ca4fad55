"""Controllers: the one shape of a handler that acts on the record its path names."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web

from edge_agent.api import rendering
from edge_agent.gateway.context import PRINCIPAL
from edge_agent.models import Principal

RecordT = TypeVar("RecordT")


async def answer_act(
    request: web.Request,
    act: Callable[[str, Principal], Awaitable[RecordT]],
    render: Callable[[RecordT], dict[str, Any]],
) -> web.Response:
    """Apply ``act`` to the path's ``{id}`` as the caller; answer with the record."""
    record = await act(request.match_info["id"], request[PRINCIPAL])
    return rendering.json_response(render(record))
