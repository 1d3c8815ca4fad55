"""People import files (CSV) and the import report. Service layer, no I/O."""

from __future__ import annotations

import csv
import enum
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from edge_agent.errors import InvalidInput

# The columns of an import file; the first two are required.
IMPORT_COLUMNS = (
    "employee_no",
    "name",
    "department",
    "valid_from",
    "valid_until",
    "photo",
)
_REQUIRED_COLUMNS = frozenset(IMPORT_COLUMNS[:2])
PHOTO_SEPARATOR = ";"
# Where the csv module puts the fields of a row longer than the header.
_EXTRA_FIELDS = "\0extra"
_TOO_MANY_FIELDS = "the row has more fields than the header"


class ImportOutcome(enum.StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class ImportRow:
    """One data row of an import file: ``line`` is its line in the file (the
    header is line 1), ``values`` holds the columns the file has, stripped."""

    line: int
    values: Mapping[str, str]
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class RowResult:
    line: int
    employee_no: str
    outcome: ImportOutcome
    reason: str | None = None
    person_id: str | None = None


@dataclass(frozen=True, slots=True)
class ImportReport:
    rows: list[RowResult] = field(default_factory=list)

    def count(self, outcome: ImportOutcome) -> int:
        return sum(1 for row in self.rows if row.outcome is outcome)

    @property
    def counts(self) -> dict[str, int]:
        return {outcome.value: self.count(outcome) for outcome in ImportOutcome}

    @property
    def failures(self) -> list[RowResult]:
        return [row for row in self.rows if row.outcome is ImportOutcome.FAILED]


def parse_people_csv(text: str) -> list[ImportRow]:
    """The rows of an import file; a header without the required columns, or
    with unknown ones, refuses the whole file."""
    reader = csv.DictReader(io.StringIO(text), restkey=_EXTRA_FIELDS)
    header = [name.strip() for name in reader.fieldnames or []]
    _check_header(header)

    rows = []
    for raw in reader:
        values = {
            name.strip(): (value or "").strip()
            for name, value in raw.items()
            if name != _EXTRA_FIELDS
        }
        problem = _TOO_MANY_FIELDS if _EXTRA_FIELDS in raw else None
        rows.append(ImportRow(reader.line_num, values, problem))
    return rows


def _check_header(header: Sequence[str]) -> None:
    missing = sorted(_REQUIRED_COLUMNS - set(header))
    unknown = sorted(set(header) - set(IMPORT_COLUMNS))
    if missing or unknown:
        raise InvalidInput(
            f"the import file needs the columns {', '.join(IMPORT_COLUMNS[:2])} "
            f"and may have {', '.join(IMPORT_COLUMNS[2:])}; "
            f"missing: {', '.join(missing) or 'none'}, "
            f"unknown: {', '.join(unknown) or 'none'}"
        )
