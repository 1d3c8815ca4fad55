"""Storage client: the data folder's owner lock, held by the serving daemon.

``edge-agent serve`` holds an exclusive ``flock(2)`` on
``<data_dir>/edge-agent.lock`` for as long as it runs. Maintenance that must
not overlap with a daemon (restoring or vacuuming the database) takes the same
lock, and is refused while the daemon holds it. The kernel drops the lock when
its process ends, however it ends (``kill -9`` and power loss included), so a
stale file never blocks anyone; the pid written inside is only for the
message.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from types import TracebackType

from edge_agent.errors import Conflict

LOCK_FILE = "edge-agent.lock"


class DataDirBusy(Conflict):
    """Another process holds the data folder's lock."""

    slug = "data-dir-busy"
    title = "Data folder in use"


class DataDirLock:
    """The exclusive lock on one data folder; a context manager."""

    def __init__(self, data_dir: Path, purpose: str) -> None:
        self.path = data_dir / LOCK_FILE
        self._purpose = purpose
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock at once, or raise :class:`DataDirBusy` naming the holder."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise DataDirBusy(
                f"{self.path.parent} is in use by {holder}; stop it first"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {self._purpose}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            # The file stays: removing it would let a second process lock a
            # new inode while a third still waits on the old one.
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> DataDirLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError):
        pid, _, purpose = os.pread(fd, 200, 0).decode().strip().partition(" ")
        if pid.isdigit():
            return f"{purpose or 'another process'} (pid {pid})"
    return "another process"
