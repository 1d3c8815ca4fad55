"""``scripts/bench_sync.py`` on a small backlog: the table, plausible figures,
and every record held by the central server exactly once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_sync.py"
RECORDS = 2000
COLUMNS = ["store", "records", "seconds", "records/s", "baseline", "ratio", "held"]


def _run(*args: str) -> dict[str, dict[str, float]]:
    """Run the benchmark; its table as {store: {column: value}}."""
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--records", str(RECORDS), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    header = next(n for n, line in enumerate(lines) if line.startswith("store"))
    assert "baseline records/s" in lines[header]
    table: dict[str, dict[str, float]] = {}
    for line in lines[header + 1 :]:
        store, *figures = line.split()
        table[store] = dict(zip(COLUMNS[1:], map(float, figures), strict=True))
    return table


def _check(row: dict[str, float]) -> None:
    assert row["records"] == RECORDS
    assert row["held"] == RECORDS
    assert row["seconds"] > 0
    assert row["records/s"] == pytest.approx(RECORDS / row["seconds"], rel=0.02)
    assert row["baseline"] > 0
    assert row["ratio"] == pytest.approx(
        row["records/s"] / row["baseline"], rel=0.05, abs=0.002
    )


def test_the_benchmark_on_sqlite_prints_its_table() -> None:
    table = _run("--stores", "sqlite")

    assert list(table) == ["sqlite"]
    _check(table["sqlite"])


def test_the_benchmark_on_postgresql_prints_its_table(postgres_dsn: str) -> None:
    table = _run("--stores", "postgresql", "--postgres-dsn", postgres_dsn)

    assert list(table) == ["postgresql"]
    _check(table["postgresql"])
