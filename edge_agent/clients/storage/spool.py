"""Storage client: the spool folder holding accepted frames until they are decided.

A frame's file is written to a temporary name, fsynced, renamed into place and
the folder fsynced (POSIX rename is atomic; the folder's fsync makes the new
name durable), all before its queue row is committed. A crash can therefore
leave a file without a row, never a row without its file; :meth:`orphans`
finds the former at start. Every method blocks: call them off the event loop.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path

_SUFFIX = ".frame"
_TEMP_SUFFIX = ".partial"


class SpoolFolder:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def prepare(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        for leftover in self.folder.glob(f"*{_TEMP_SUFFIX}"):
            leftover.unlink(missing_ok=True)

    def write(self, frame_id: str, content: bytes) -> None:
        final = self._path(frame_id)
        temp = final.with_suffix(_TEMP_SUFFIX)
        with temp.open("wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, final)
        self._sync_folder()

    def read(self, frame_id: str) -> bytes:
        return self._path(frame_id).read_bytes()

    def remove(self, frame_ids: Iterable[str]) -> None:
        for frame_id in frame_ids:
            self._path(frame_id).unlink(missing_ok=True)

    def free_bytes(self) -> int:
        """Free space on the file system of the spool, for unprivileged use."""
        return shutil.disk_usage(self.folder).free

    def stored_ids(self) -> set[str]:
        return {path.stem for path in self.folder.glob(f"*{_SUFFIX}")}

    def _path(self, frame_id: str) -> Path:
        if not frame_id.isalnum():
            raise ValueError(f"not a frame id: {frame_id!r}")
        return self.folder / f"{frame_id}{_SUFFIX}"

    def _sync_folder(self) -> None:
        fd = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
