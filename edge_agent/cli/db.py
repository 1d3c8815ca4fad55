"""Site admin CLI: ``edge-agent db ...``, backups, restore, vacuum and checks.

``backup`` and ``check`` run beside a serving daemon. ``restore`` and
``vacuum`` replace or rewrite the file the daemon has open, so they take the
data folder's lock, which ``edge-agent serve`` holds while it runs: they are
refused while the daemon runs, and a daemon cannot start while they work.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.progress import Progress
from rich.table import Table

from edge_agent.cli.common import (
    ConfigOption,
    DataDirOption,
    JsonOption,
    console,
    fail,
    print_json,
    settings_from,
)
from edge_agent.clients.storage.backup import (
    DatabaseCheck,
    backup_database,
    check_database,
    default_backup_path,
    prune_backups,
    restore_database,
    vacuum_database,
    verify_backup,
)
from edge_agent.clients.storage.lock import DataDirLock
from edge_agent.config import Settings
from edge_agent.errors import EdgeError

app = typer.Typer(help="The appliance's database file.", no_args_is_help=True)

T = TypeVar("T")

# Files smaller than this copy in a blink; a progress bar would only flicker.
PROGRESS_MIN_BYTES = 32 * 1024 * 1024


def _database(settings: Settings) -> Path:
    path = settings.storage.database_path
    if not path.is_file():
        fail(f"no database at {path} (run edge-agent init, or pass --data-dir)")
    return path


def _guarded(work: Callable[[], T]) -> T:
    """Run ``work``; its failures become one line and a non-zero exit."""
    try:
        return work()
    except EdgeError as exc:
        fail(exc.detail)
    except (sqlite3.Error, OSError) as exc:
        fail(str(exc))


@contextmanager
def _progress(total_bytes: int, label: str) -> Iterator[Callable[[int, int], None]]:
    show = console.is_terminal and total_bytes >= PROGRESS_MIN_BYTES
    with Progress(console=console, transient=True, disable=not show) as progress:
        task = progress.add_task(label, total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield advance


@app.command("backup")
def db_backup(
    output: Annotated[
        Path | None,
        typer.Option(
            help="Backup file, or a folder (a name without extension) for a "
            "timestamped one; default: <data_dir>/backups."
        ),
    ] = None,
    keep: Annotated[
        int | None,
        typer.Option(min=1, help="Keep only the N newest backups in that folder."),
    ] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Copy the database while the daemon runs, check the copy, then publish it."""
    settings = settings_from(config, data_dir)
    source = _database(settings)
    target = _backup_target(output, settings.storage.data_dir / "backups")

    with _progress(source.stat().st_size, "Backing up") as advance:
        _guarded(lambda: backup_database(source, target, advance))
    console.print(f"Backed up {source} to {target} ({target.stat().st_size} bytes)")

    if keep is not None:
        removed = _guarded(lambda: prune_backups(target.parent, keep, spare=target))
        for path in removed:
            console.print(f"Removed old backup {path}")


def _backup_target(output: Path | None, default_folder: Path) -> Path:
    if output is None:
        return default_backup_path(default_folder)
    # A name without an extension is a folder, even before it exists.
    if output.is_dir() or not output.suffix:
        return default_backup_path(output)
    return output


@app.command("restore")
def db_restore(
    backup: Annotated[Path, typer.Argument(help="Backup file to restore.")],
    force: Annotated[
        bool, typer.Option("--force", help="Replace the database without asking.")
    ] = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Replace the database with a checked backup; the daemon must be stopped."""
    settings = settings_from(config, data_dir)
    database = settings.storage.database_path
    _guarded(lambda: verify_backup(backup))
    if not force:
        _confirm(f"Replace {database} with {backup}?")

    with _locked(settings, "edge-agent db restore"):
        kept = _guarded(lambda: restore_database(backup, database))
    console.print(f"Restored {database} from {backup}")
    if kept is not None:
        console.print(f"The previous database is kept as {kept}")


def _confirm(question: str) -> None:
    if not sys.stdin.isatty():
        fail("refusing to replace the database without --force (stdin is no TTY)")
    if not typer.confirm(question):
        fail("nothing restored")


@contextmanager
def _locked(settings: Settings, purpose: str) -> Iterator[None]:
    lock = DataDirLock(settings.storage.data_dir, purpose)
    _guarded(lock.acquire)
    try:
        yield
    finally:
        lock.release()


@app.command("vacuum")
def db_vacuum(config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """Rebuild the database file to return free pages; the daemon must be stopped."""
    settings = settings_from(config, data_dir)
    database = _database(settings)
    with _locked(settings, "edge-agent db vacuum"):
        before, after = _guarded(lambda: vacuum_database(database))
    console.print(f"Vacuumed {database}: {before} -> {after} bytes")


@app.command("check")
def db_check(
    quick: Annotated[
        bool, typer.Option("--quick", help="quick_check: skip index contents.")
    ] = False,
    json: JsonOption = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Check the database's pages and migrations; exit 1 on any problem."""
    database = _database(settings_from(config, data_dir))
    check = _guarded(lambda: check_database(database, quick=quick))
    if json:
        print_json(_check_json(check))
    else:
        console.print(_check_table(check))
    if not check.ok:
        raise typer.Exit(1)


def _check_json(check: DatabaseCheck) -> dict[str, object]:
    return {
        "database": str(check.path),
        "ok": check.ok,
        "integrity": check.integrity,
        "migrations_applied": check.applied,
        "migrations_pending": check.pending,
        "migrations_unknown": check.unknown,
        "problems": check.problems(),
    }


def _check_table(check: DatabaseCheck) -> Table:
    table = Table("check", "result", title=str(check.path))
    table.add_row("integrity", "; ".join(check.integrity))
    table.add_row("migrations applied", ", ".join(map(str, check.applied)) or "none")
    table.add_row("migrations pending", ", ".join(map(str, check.pending)) or "none")
    if check.unknown:
        table.add_row("migrations unknown", ", ".join(map(str, check.unknown)))
    return table
