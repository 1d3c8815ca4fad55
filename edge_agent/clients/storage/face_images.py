"""Storage client: the enrollment images of each person, kept on the appliance.

Some recognizers replace a subject's registration on every call, so all of
a person's images must be sent together, and repairing a recognizer that lost
its subjects needs the images again. Files are named by their SHA-256 under a
folder per person; erasing a person removes the folder. Every method blocks:
call them off the event loop.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


class FaceImageStore:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def save(self, person_id: str, sha256: str, image: bytes) -> None:
        path = self._person(person_id) / f"{sha256}.img"
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_suffix(".partial")
        with temp.open("wb") as handle:
            handle.write(image)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)

    def load_all(self, person_id: str) -> list[bytes]:
        folder = self._person(person_id)
        if not folder.is_dir():
            return []
        return [path.read_bytes() for path in sorted(folder.glob("*.img"))]

    def remove(self, person_id: str, sha256: str) -> None:
        (self._person(person_id) / f"{sha256}.img").unlink(missing_ok=True)

    def erase(self, person_id: str) -> None:
        shutil.rmtree(self._person(person_id), ignore_errors=True)

    def _person(self, person_id: str) -> Path:
        if not person_id.isalnum():
            raise ValueError(f"not a person id: {person_id!r}")
        return self.folder / person_id
