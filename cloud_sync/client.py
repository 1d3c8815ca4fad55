"""Site-side client of the central server: send one batch, get a typed answer.

The client sends and classifies; it keeps no state and never retries on its
own. The uploader that drives it decides what each outcome means for its
cursor. Every failure is one of::

    SyncError
    ├── Retryable            network error, timeout, 5xx, 429: try again later
    │                        (``retry_after`` when the server said how long)
    └── Refused              the same request would be refused again
        ├── GapRefused       409 sequence-gap: resend from ``expected_seq``
        ├── ChainRefused     409 audit-chain-broken: the office flagged the site
        ├── PayloadConflict  422 idempotency-conflict: same range, other records
        ├── TooLarge         413: send smaller batches
        ├── Unauthorized     401 or 403: the token is wrong or not this site's
        └── BatchRejected    any other 4xx: the batch itself is malformed
"""

from __future__ import annotations

import email.utils
import logging
import random
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Final, Self

import httpx
from pydantic import ValidationError

from cloud_sync.protocol import (
    BATCH_CONTENT_TYPE,
    Batch,
    BatchAck,
    Problem,
    ProblemType,
    Record,
    Stream,
    batch_path,
    encode_batch,
    idempotency_key,
)

__all__ = [
    "BatchRejected",
    "CentralClient",
    "ChainRefused",
    "GapRefused",
    "PayloadConflict",
    "Refused",
    "Retryable",
    "SyncError",
    "TooLarge",
    "Unauthorized",
    "backoff",
]

logger = logging.getLogger(__name__)

BACKOFF_BASE_S: Final = 1.0
BACKOFF_CAP_S: Final = 300.0


class SyncError(Exception):
    """A batch was not delivered; ``problem`` is the server's answer, if any."""

    def __init__(
        self, message: str, *, status: int | None = None, problem: Problem | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.problem = problem


class Retryable(SyncError):
    """Worth another try after a pause; ``retry_after`` is the server's wish, in s."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        problem: Problem | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, problem=problem)
        self.retry_after = retry_after


class Refused(SyncError):
    """The server refused this batch for a reason that a resend does not change."""


class GapRefused(Refused):
    """The batch starts after a gap; the server wants ``expected_seq`` next."""

    def __init__(self, message: str, *, expected_seq: int, problem: Problem) -> None:
        super().__init__(message, status=409, problem=problem)
        self.expected_seq = expected_seq


class ChainRefused(Refused):
    """The audit entries do not continue the chain the office holds."""


class PayloadConflict(Refused):
    """The idempotency key was used before for different records."""


class TooLarge(Refused):
    """The batch is over the server's size or record-count limit."""


class Unauthorized(Refused):
    """The token is unknown (401) or not allowed for this site (403)."""


class BatchRejected(Refused):
    """The server found the batch malformed (400, 404, 415, 422 of another kind)."""


class CentralClient:
    """Sends batches to one central server with one site token.

    Use as an async context manager, or call :meth:`aclose` when done.
    ``transport`` is for tests and proxies; ``clock`` gives ``sent_at``.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout_s: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], datetime] | None = None,
        extra_headers: Callable[[], Mapping[str, str]] | None = None,
    ) -> None:
        """``extra_headers`` adds headers to each batch as it is sent (a W3C
        ``traceparent``, say)."""
        self._token = token
        self._extra_headers = extra_headers
        self._clock = clock or (lambda: datetime.now(UTC))
        self._http = httpx.AsyncClient(
            base_url=base_url, timeout=timeout_s, transport=transport
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def send_batch(
        self,
        site_id: str,
        stream: Stream,
        records: Sequence[Record],
        site_head: int,
    ) -> BatchAck:
        """Send ``records`` (consecutive, oldest first) as one batch.

        Returns the server's acknowledgement; raises a :class:`SyncError`.
        Invalid input (records not consecutive, of another site or stream)
        raises pydantic's ``ValidationError`` before anything is sent.
        """
        batch = Batch(
            site_id=site_id,
            stream=stream,
            sent_at=self._clock(),
            site_head=site_head,
            records=list(records),
        )
        response = await self._post(
            batch_path(site_id, stream), encode_batch(batch), self._headers(batch)
        )
        logger.debug(
            "Batch %s/%s seq %d-%d answered %d",
            site_id,
            stream.value,
            batch.first_seq,
            batch.last_seq,
            response.status_code,
        )
        return _ack_or_raise(response)

    def _headers(self, batch: Batch) -> dict[str, str]:
        """The batch's headers: token, gzip JSON, its key, then any extras."""
        key = idempotency_key(
            batch.site_id, batch.stream, batch.first_seq, batch.last_seq
        )
        headers = {
            "Authorization": f"Bearer {self._token}",
            "Content-Type": BATCH_CONTENT_TYPE,
            "Content-Encoding": "gzip",
            "Accept": "application/json",
            "Idempotency-Key": key,
        }
        if self._extra_headers is not None:
            headers.update(self._extra_headers())
        return headers

    async def _post(
        self, path: str, body: bytes, headers: dict[str, str]
    ) -> httpx.Response:
        """POST, turning every transport failure into :class:`Retryable`."""
        try:
            return await self._http.post(path, content=body, headers=headers)
        except httpx.TransportError as exc:
            raise Retryable(f"cannot reach the central server: {exc!r}") from exc


def backoff(
    attempt: int,
    *,
    base_s: float = BACKOFF_BASE_S,
    cap_s: float = BACKOFF_CAP_S,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before retry number ``attempt`` (0 for the first retry).

    "Full jitter": uniform between 0 and ``min(cap_s, base_s * 2**attempt)``,
    so sites that lost the uplink together do not all come back at once.
    """
    ceiling = min(cap_s, base_s * 2 ** min(max(attempt, 0), 32))
    return (rng or random).uniform(0, ceiling)


def _ack_or_raise(response: httpx.Response) -> BatchAck:
    if response.status_code == 200:
        try:
            return BatchAck.model_validate_json(response.content)
        except ValidationError as exc:
            raise Retryable("the server's answer is not an acknowledgement") from exc
    raise _error_of(response, _problem_of(response))


def _error_of(response: httpx.Response, problem: Problem | None) -> SyncError:
    status = response.status_code
    detail = problem.detail if problem and problem.detail else response.reason_phrase
    message = f"{status}: {detail}"
    slug = problem.slug if problem else None
    if status == 429 or status >= 500:
        return Retryable(
            message, status=status, problem=problem, retry_after=_retry_after(response)
        )
    if status == 409 and slug == ProblemType.SEQUENCE_GAP:
        gap = _gap_of(message, problem)
        if gap is not None:
            return gap
    if status == 409 and slug == ProblemType.AUDIT_CHAIN_BROKEN:
        return ChainRefused(message, status=status, problem=problem)
    if status == 422 and slug == ProblemType.IDEMPOTENCY_CONFLICT:
        return PayloadConflict(message, status=status, problem=problem)
    return _plain_refusal(status)(message, status=status, problem=problem)


def _gap_of(message: str, problem: Problem | None) -> GapRefused | None:
    if problem is None or problem.expected_seq is None:
        return None
    return GapRefused(message, expected_seq=problem.expected_seq, problem=problem)


def _plain_refusal(status: int) -> type[Refused]:
    if status == 413:
        return TooLarge
    if status in (401, 403):
        return Unauthorized
    if 400 <= status < 500:
        return BatchRejected
    # A 1xx/3xx here means a proxy or redirect the client does not follow.
    return Refused


def _problem_of(response: httpx.Response) -> Problem | None:
    try:
        return Problem.model_validate_json(response.content)
    except ValidationError:
        return None


def _retry_after(response: httpx.Response) -> float | None:
    """RFC 9110 section 10.2.3: delay in seconds, or an HTTP date."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)
