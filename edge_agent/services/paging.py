"""Paging of listings: the limits a page may ask for and its next cursor. Service layer.

A listing asks its repository for one row beyond the page: that row says
another page exists, so the last page never comes with a cursor that leads to
an empty one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from edge_agent.errors import InvalidInput

MAX_PAGE_SIZE = 500

_Item = TypeVar("_Item")


def check_limit(limit: int, most: int = MAX_PAGE_SIZE) -> None:
    """Refuse a page size outside 1 to ``most``."""
    if not 1 <= limit <= most:
        raise InvalidInput(f"limit must be between 1 and {most}")


def check_cursor(cursor: int | None) -> None:
    """Refuse a negative cursor."""
    if cursor is not None and cursor < 0:
        raise InvalidInput("cursor must not be negative")


def split_page(
    found: Sequence[_Item], limit: int, key: Callable[[_Item], int]
) -> tuple[list[_Item], int | None]:
    """The page out of ``limit + 1`` rows found, and the cursor to the next page
    (the key of the page's last item), ``None`` on the last page."""
    page = list(found[:limit])
    if len(found) <= limit:
        return page, None
    return page, key(page[-1])
