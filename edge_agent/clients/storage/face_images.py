"""Storage client: the enrollment images of each person, kept on the appliance.

Some recognizers replace a subject's registration on every call, so all of
a person's images must be sent together, and repairing a recognizer that lost
its subjects needs the images again. A file holds the image exactly as it was
sent to the recognizer (normalized), named by the SHA-256 of the image as it
was uploaded (the digest the face link stores), in a folder per person;
erasing a person removes the folder. Every method blocks: call them off the
event loop.

Removing a file unlinks it; the blocks it occupied are the file system's to
reuse, and no attempt is made to overwrite them (on flash storage and
journaling file systems an overwrite would not reliably reach them anyway).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path

_SUFFIX = ".img"


class FaceImageStore:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def save(self, person_id: str, sha256: str, image: bytes) -> None:
        path = self._path(person_id, sha256)
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_suffix(".partial")
        with temp.open("wb") as handle:
            handle.write(image)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)

    def load(self, person_id: str, sha256: str) -> bytes | None:
        """The stored image, or ``None`` when its file is gone."""
        try:
            return self._path(person_id, sha256).read_bytes()
        except FileNotFoundError:
            return None

    def load_many(self, person_id: str, digests: Iterable[str]) -> list[bytes]:
        """The stored images of ``digests``, in order, skipping missing files."""
        found = (self.load(person_id, sha256) for sha256 in digests)
        return [image for image in found if image is not None]

    def remove(self, person_id: str, sha256: str) -> None:
        self._path(person_id, sha256).unlink(missing_ok=True)

    def erase(self, person_id: str) -> None:
        """Remove every image of the person; a failure is raised, not hidden,
        because an erasure that leaves files behind must not pass as done."""
        folder = self._person(person_id)
        if folder.is_dir():
            shutil.rmtree(folder)

    def _path(self, person_id: str, sha256: str) -> Path:
        if not sha256.isalnum():
            raise ValueError(f"not an image digest: {sha256!r}")
        return self._person(person_id) / f"{sha256}{_SUFFIX}"

    def _person(self, person_id: str) -> Path:
        if not person_id.isalnum():
            raise ValueError(f"not a person id: {person_id!r}")
        return self.folder / person_id
