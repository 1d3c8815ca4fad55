"""Storage client: online backup, verification, restore and vacuum of the SQLite file.

Every function here blocks (file copies, fsync, whole-file checks); callers
run them off any event loop.

A backup uses SQLite's online backup API while the daemon keeps writing. The
source connection first opens a read transaction and holds it to the end: in
WAL mode that pins one snapshot, so the copy is consistent, writers are never
blocked, and the backup never restarts because of their commits (a backup
step otherwise starts over when another connection changed the source since
the previous step). The copy is written beside its final name, checked with
``PRAGMA integrity_check``, fsynced, renamed into place, and the folder
fsynced, so a crash leaves either no backup or a whole one.

Restore and vacuum replace or rewrite the file the daemon has open, so they
run only while the caller holds the data folder's lock (see ``lock.py``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from edge_agent.clients.storage.migrations import available_migrations
from edge_agent.errors import Refused

logger = logging.getLogger(__name__)

BACKUP_PREFIX = "edge-agent-"
BACKUP_SUFFIX = ".sqlite3"
PRE_RESTORE_SUFFIX = ".pre-restore"
# Pages copied per backup step; between steps the progress is reported.
STEP_PAGES = 1024
# VACUUM writes a new copy of the file before dropping the old one.
VACUUM_SPACE_FACTOR = 2.0
_SIDE_FILES = ("-wal", "-shm")

Progress = Callable[[int, int], None]


class BackupError(Refused):
    """A backup, restore or vacuum that cannot be done safely."""

    slug = "backup-refused"
    title = "Backup refused"


@dataclass(frozen=True, slots=True)
class DatabaseCheck:
    """What ``check_database`` found; ``ok`` when the file can be used as is."""

    path: Path
    integrity: list[str]
    applied: list[int] = field(default_factory=list)
    pending: list[int] = field(default_factory=list)
    unknown: list[int] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return self.integrity == ["ok"]

    @property
    def ok(self) -> bool:
        return self.intact and not self.pending and not self.unknown

    def problems(self) -> list[str]:
        found = [] if self.intact else [f"integrity: {'; '.join(self.integrity)}"]
        if self.pending:
            found.append(f"migrations not applied: {_versions(self.pending)}")
        if self.unknown:
            found.append(
                f"migrations newer than this software: {_versions(self.unknown)}"
            )
        return found


def _versions(versions: list[int]) -> str:
    return ", ".join(f"{v:04d}" for v in versions)


def check_database(path: Path, *, quick: bool = False) -> DatabaseCheck:
    """Check the file's pages and its migrations; raise if it is not SQLite."""
    with _connect(path) as conn:
        pragma = "quick_check" if quick else "integrity_check"
        try:
            integrity = [row[0] for row in conn.execute(f"PRAGMA {pragma}")]
            applied = _applied_versions(conn)
        except sqlite3.DatabaseError as exc:
            return DatabaseCheck(path, [str(exc)])
    known = {m.version for m in available_migrations()}
    return DatabaseCheck(
        path,
        integrity,
        sorted(applied),
        sorted(known - applied),
        sorted(applied - known),
    )


def _applied_versions(conn: sqlite3.Connection) -> set[int]:
    tables = conn.execute(
        "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?",
        ("schema_migrations",),
    ).fetchall()
    if not tables:
        return set()
    return {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}


@contextlib.contextmanager
def _connect(path: Path, busy_timeout_s: float = 5.0) -> Iterator[sqlite3.Connection]:
    """An autocommit connection to an existing file (never creates one)."""
    if not path.is_file():
        raise BackupError(f"{path} does not exist")
    try:
        conn = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=rw",
            uri=True,
            isolation_level=None,
            timeout=busy_timeout_s,
        )
    except sqlite3.Error as exc:
        raise BackupError(f"{path} cannot be opened: {exc}") from exc
    try:
        yield conn
    finally:
        conn.close()


def default_backup_path(folder: Path, now: datetime | None = None) -> Path:
    """``<folder>/edge-agent-<UTC timestamp>.sqlite3``; names sort by time."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S%fZ")
    return folder / f"{BACKUP_PREFIX}{stamp}{BACKUP_SUFFIX}"


def backup_database(
    source: Path, target: Path, progress: Progress | None = None
) -> DatabaseCheck:
    """Copy the live database to ``target`` atomically; return the copy's check."""
    if target.exists():
        raise BackupError(f"{target} already exists")
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    try:
        _copy(source, partial, progress)
        check = check_database(partial)
        if not check.intact:
            raise BackupError(f"the copy failed its check: {check.problems()[0]}")
        _publish(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    logger.info("Backed up %s to %s", source, target)
    return check


def _copy(source: Path, target: Path, progress: Progress | None) -> None:
    """One consistent snapshot of ``source`` into a new file ``target``."""
    # The copy holds personal data: readable by the owner only, from birth.
    os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    with _connect(source) as src, contextlib.closing(sqlite3.connect(target)) as dst:
        src.execute("BEGIN")
        src.execute("SELECT count(*) FROM sqlite_schema").fetchone()
        try:
            src.backup(dst, pages=STEP_PAGES, progress=_reporter(progress))
        finally:
            src.execute("ROLLBACK")
        # A backup carries the source's WAL flag; a file at rest is simpler to
        # move and copy as one file.
        dst.execute("PRAGMA journal_mode = DELETE")


def _reporter(progress: Progress | None) -> Callable[[int, int, int], object] | None:
    if progress is None:
        return None

    def report(_status: int, remaining: int, total: int) -> None:
        progress(total - remaining, total)

    return report


def _publish(partial: Path, target: Path) -> None:
    """fsync the file, rename it into place, fsync the folder (rename(2))."""
    _fsync(partial)
    os.replace(partial, target)
    _fsync(target.parent)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def prune_backups(folder: Path, keep: int, *, spare: Path | None = None) -> list[Path]:
    """Remove all but the ``keep`` newest ``edge-agent-*.sqlite3`` in ``folder``."""
    found = sorted(
        (p for p in folder.glob(f"{BACKUP_PREFIX}*{BACKUP_SUFFIX}") if p.is_file()),
        key=lambda p: (p.stat().st_mtime, p.name),
        reverse=True,
    )
    removed = [p for p in found[keep:] if p != spare]
    for path in removed:
        path.unlink()
        logger.info("Removed old backup %s", path)
    return removed


def verify_backup(backup: Path) -> DatabaseCheck:
    """The backup's check, or :class:`BackupError` when it must not be restored."""
    try:
        check = check_database(backup)
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{backup} is not a usable database: {exc}") from exc
    if not check.intact or check.unknown or not check.applied:
        reason = "; ".join(check.problems()) or "it holds no appliance schema"
        raise BackupError(f"{backup} cannot be restored: {reason}")
    return check


def restore_database(backup: Path, database: Path) -> Path | None:
    """Replace ``database`` with ``backup``; return where the old file was kept.

    The caller holds the data folder's lock. The old file, with its WAL folded
    in, is kept as ``<database>.pre-restore`` (replacing an earlier one).
    """
    verify_backup(backup)
    staged = database.with_name(database.name + ".restoring")
    staged.unlink(missing_ok=True)
    try:
        _copy(backup, staged, None)
        _fsync(staged)
        kept = _set_aside(database)
        os.replace(staged, database)
        _fsync(database.parent)
    finally:
        staged.unlink(missing_ok=True)
    logger.info("Restored %s from %s", database, backup)
    return kept


def _set_aside(database: Path) -> Path | None:
    """Fold the WAL into the old file and move it (and any side file) aside."""
    if not database.exists():
        return None
    with contextlib.suppress(sqlite3.Error), _connect(database) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    kept = database.with_name(database.name + PRE_RESTORE_SUFFIX)
    os.replace(database, kept)
    # A WAL left beside the new file would be replayed into it.
    for suffix in _SIDE_FILES:
        side = database.with_name(database.name + suffix)
        if side.exists():
            os.replace(side, kept.with_name(kept.name + suffix))
    return kept


def vacuum_database(database: Path) -> tuple[int, int]:
    """Rebuild the file without free pages; return its size before and after.

    The caller holds the data folder's lock: VACUUM holds the write lock for
    as long as it runs, which a serving daemon would see as a stalled writer.
    """
    before = _size(database)
    free = shutil.disk_usage(database.parent).free
    if free < before * VACUUM_SPACE_FACTOR:
        raise BackupError(
            f"vacuum needs about {int(before * VACUUM_SPACE_FACTOR)} bytes free "
            f"in {database.parent}, {free} are"
        )
    with _connect(database) as conn:
        conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    after = _size(database)
    logger.info("Vacuumed %s: %d -> %d bytes", database, before, after)
    return before, after


def _size(database: Path) -> int:
    wal = database.with_name(database.name + "-wal")
    return database.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
