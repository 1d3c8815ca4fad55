"""Domain errors of the central server; each is one problem type of the protocol.

The tree, with the HTTP status each is answered with::

    SyncProblem
    ├── InvalidRequest           400 invalid-request
    │   ├── InvalidJson          400 invalid-json
    │   ├── UnsupportedVersion   400 unsupported-protocol-version
    │   └── MissingIdempotencyKey 400 missing-idempotency-key
    ├── InvalidBatch             422 invalid-batch
    │   └── InvalidAuditRecord   422 invalid-audit-record
    ├── IdempotencyConflict      422 idempotency-conflict
    ├── Unauthorized             401 unauthorized
    ├── Forbidden                403 forbidden
    ├── NotFound                 404 not-found
    ├── Conflict                 409 conflict
    │   ├── SequenceGap          409 sequence-gap (with expected_seq)
    │   └── ChainBroken          409 audit-chain-broken
    ├── BodyTooLarge             413 body-too-large
    ├── UnsupportedMediaType     415 unsupported-media-type
    └── Unavailable              503 unavailable

Services and stores raise these; one middleware renders them (see
``cloud_sync.server.http.problems``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from cloud_sync.protocol import ProblemType


class SyncProblem(Exception):
    """A refusal the client can act on; ``extras`` become problem members."""

    status: ClassVar[int] = 400
    slug: ClassVar[ProblemType] = ProblemType.INVALID_REQUEST
    title: ClassVar[str] = "Invalid request"

    def __init__(self, detail: str, **extras: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extras = extras


class InvalidRequest(SyncProblem):
    pass


class InvalidJson(InvalidRequest):
    slug = ProblemType.INVALID_JSON
    title = "Body is not JSON"


class UnsupportedVersion(InvalidRequest):
    slug = ProblemType.UNSUPPORTED_PROTOCOL_VERSION
    title = "Unsupported protocol version"


class MissingIdempotencyKey(InvalidRequest):
    slug = ProblemType.MISSING_IDEMPOTENCY_KEY
    title = "Idempotency-Key header missing or malformed"


class InvalidBatch(SyncProblem):
    status = 422
    slug = ProblemType.INVALID_BATCH
    title = "Invalid batch"


class InvalidAuditRecord(InvalidBatch):
    slug = ProblemType.INVALID_AUDIT_RECORD
    title = "Invalid audit record"


class IdempotencyConflict(SyncProblem):
    status = 422
    slug = ProblemType.IDEMPOTENCY_CONFLICT
    title = "Idempotency key reused with another payload"


class Unauthorized(SyncProblem):
    status = 401
    slug = ProblemType.UNAUTHORIZED
    title = "Unauthorized"


class Forbidden(SyncProblem):
    status = 403
    slug = ProblemType.FORBIDDEN
    title = "Forbidden"


class NotFound(SyncProblem):
    status = 404
    slug = ProblemType.NOT_FOUND
    title = "Not found"


class Conflict(SyncProblem):
    status = 409
    slug = ProblemType.CONFLICT
    title = "Conflict"


class SequenceGap(Conflict):
    slug = ProblemType.SEQUENCE_GAP
    title = "Batch leaves a gap in the stream"

    def __init__(self, expected_seq: int, first_seq: int) -> None:
        super().__init__(
            f"batch starts at seq {first_seq}; the next seq expected is {expected_seq}",
            expected_seq=expected_seq,
        )
        self.expected_seq = expected_seq


class ChainBroken(Conflict):
    slug = ProblemType.AUDIT_CHAIN_BROKEN
    title = "Audit chain broken"

    def __init__(self, seq: int, reason: str) -> None:
        super().__init__(f"audit entry {seq}: {reason}", seq=seq)
        self.seq = seq
        self.reason = reason


class BodyTooLarge(SyncProblem):
    status = 413
    slug = ProblemType.BODY_TOO_LARGE
    title = "Body too large"


class UnsupportedMediaType(SyncProblem):
    status = 415
    slug = ProblemType.UNSUPPORTED_MEDIA_TYPE
    title = "Unsupported media type or encoding"


class Unavailable(SyncProblem):
    status = 503
    slug = ProblemType.UNAVAILABLE
    title = "Service unavailable"
