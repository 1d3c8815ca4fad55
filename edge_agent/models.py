"""Domain records passed between services, clients and controllers (no I/O here)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class PersonStatus(enum.StrEnum):
    ACTIVE = "active"
    INACTIVE = "inactive"


class Direction(enum.StrEnum):
    """Which way a camera watches: entry marks check-in, exit marks check-out."""

    ENTRY = "entry"
    EXIT = "exit"
    BOTH = "both"


class MarkKind(enum.StrEnum):
    CHECK_IN = "check_in"
    CHECK_OUT = "check_out"


class Outcome(enum.StrEnum):
    """What became of one face in one frame."""

    MARKED = "marked"
    DUPLICATE = "duplicate"
    UNKNOWN = "unknown"
    INACTIVE_PERSON = "inactive_person"
    NO_FACE = "no_face"
    # The frame itself was refused after acceptance (quality gate, partial
    # decode); the reason names the gate.
    REJECTED = "rejected"
    # The same bytes from the same camera came moments ago.
    DUPLICATE_FRAME = "duplicate_frame"


@dataclass(frozen=True, slots=True)
class Person:
    id: str
    employee_no: str
    name: str
    department: str | None
    status: PersonStatus
    created_at: datetime


@dataclass(frozen=True, slots=True)
class FaceExample:
    id: str
    person_id: str
    image_sha256: str
    enrolled_at: datetime


@dataclass(frozen=True, slots=True)
class Camera:
    id: str
    name: str
    direction: Direction
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Candidate:
    """One subject the recognizer proposes for a face, with its similarity."""

    subject: str
    similarity: float


@dataclass(frozen=True, slots=True)
class Box:
    x_min: int
    y_min: int
    x_max: int
    y_max: int
    probability: float


@dataclass(frozen=True, slots=True)
class RecognizedFace:
    box: Box
    candidates: tuple[Candidate, ...] = ()

    @property
    def best(self) -> Candidate | None:
        return max(self.candidates, key=lambda c: c.similarity, default=None)


@dataclass(frozen=True, slots=True)
class Frame:
    """A frame that decoded, with the metadata the camera sent."""

    id: str
    camera_id: str
    captured_at: datetime
    received_at: datetime
    sha256: str
    width: int
    height: int
    content: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class Mark:
    id: int
    person_id: str
    camera_id: str
    kind: MarkKind
    marked_at: datetime
    local_day: str
    similarity: float
    decision_id: int


@dataclass(frozen=True, slots=True)
class Decision:
    """The stored verdict for one face of one frame, mark or not, with its reason."""

    id: int
    frame_id: str
    camera_id: str
    outcome: Outcome
    reason: str
    person_id: str | None
    subject: str | None
    similarity: float | None
    decided_at: datetime
    captured_at: datetime
    mark: Mark | None = None


@dataclass(frozen=True, slots=True)
class AttendanceRow:
    """A mark joined with the person it belongs to, as listings show it."""

    mark: Mark
    employee_no: str
    name: str


class Role(enum.StrEnum):
    """What a principal may do, by the permission matrix in ``gateway.rbac``."""

    ADMIN = "admin"
    USER = "user"
    CAMERA = "camera"


class PrincipalKind(enum.StrEnum):
    ACCOUNT = "account"  # a person signed in with a password
    TOKEN = "token"  # a token issued for automation, for any subject
    CAMERA = "camera"  # a camera with its API key
    LOCAL = "local"  # the site admin at the appliance's own CLI


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is acting: resolved from credentials, recorded in the audit log."""

    kind: PrincipalKind
    subject: str
    role: Role
    token_id: str | None = None
    camera_id: str | None = None

    @property
    def label(self) -> str:
        return f"{self.kind.value}:{self.subject}"


def local_admin(user: str) -> Principal:
    """The principal of a command run at the appliance itself."""
    return Principal(PrincipalKind.LOCAL, user, Role.ADMIN)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One link of the audit hash chain: who did what, to what, when, from where."""

    seq: int
    at: datetime
    actor: str
    actor_role: str | None
    action: str
    target: str | None
    source: str | None
    outcome: str
    details: dict[str, Any]
    prev_hash: str
    hash: str
