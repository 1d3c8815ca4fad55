"""Storage client: the column conversions and listing filters repositories share."""

from __future__ import annotations

from datetime import datetime

import aiosqlite

from edge_agent.clock import from_text, to_text


def rowid(cursor: aiosqlite.Cursor) -> int:
    """The id SQLite gave the row ``cursor`` just inserted."""
    if cursor.lastrowid is None:
        raise RuntimeError("SQLite returned no row id for an insert")
    return cursor.lastrowid


def optional_text(moment: datetime | None) -> str | None:
    """A time column's value for ``moment``, NULL for none."""
    return None if moment is None else to_text(moment)


def optional_time(text: str | None) -> datetime | None:
    """The time a nullable column holds; NULL (or empty) reads as none."""
    return from_text(text) if text else None


class Filters:
    """The ``AND``-ed conditions of a listing and their parameters, in order.

    Stored times are ``to_text()`` output, which sorts as text in time order,
    so a time range is compared on the stored text.
    """

    def __init__(self, *clauses: str, params: tuple[object, ...] = ()) -> None:
        self.clauses = list(clauses)
        self.params = list(params)

    def add(self, clause: str, *params: object) -> None:
        """Require ``clause`` with its ``?`` parameters."""
        self.clauses.append(clause)
        self.params.extend(params)

    def equal(self, column: str, value: object | None) -> None:
        """Require ``column = value``, unless ``value`` is ``None``."""
        if value is not None:
            self.add(f"{column} = ?", value)

    def within(
        self, column: str, since: datetime | None, until: datetime | None
    ) -> None:
        """Require ``since <= column < until``, each bound only when given."""
        if since is not None:
            self.add(f"{column} >= ?", to_text(since))
        if until is not None:
            self.add(f"{column} < ?", to_text(until))

    def where(self) -> str:
        """`` WHERE ...`` with a leading space, or nothing without conditions."""
        return f" WHERE {' AND '.join(self.clauses)}" if self.clauses else ""
