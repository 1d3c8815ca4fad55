"""Event clients: a webhook receives each event as a signed JSON POST.

The signature lets the receiver check the body came from this appliance and
was not replayed long after: ``X-Edge-Signature: sha256=<hex>`` is the
HMAC-SHA256 (RFC 2104) of ``"<X-Edge-Timestamp>.<body>"`` under the shared
secret. Receivers call :func:`verify_signature`, which compares in constant
time and refuses a timestamp outside its tolerance.
"""

from __future__ import annotations

import hashlib
import hmac
import logging

import aiohttp

from edge_agent.clients.events.base import (
    DeliveryFailed,
    accepts_type,
    encode,
    envelope,
    type_filter,
)
from edge_agent.clients.storage.outbox import OutboxRecord
from edge_agent.clock import Clock
from edge_agent.config import WebhookSettings

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Edge-Signature"
TIMESTAMP_HEADER = "X-Edge-Timestamp"
EVENT_ID_HEADER = "X-Edge-Event-Id"
EVENT_TYPE_HEADER = "X-Edge-Event-Type"
_SCHEME = "sha256="

# Answers that say the request itself is wrong, so the same bytes sent again
# will be refused again (RFC 9110, 15.5): retrying them only holds back the
# events behind. Authentication failures (401, 403) are left retryable, since
# fixing the receiver's configuration makes the same request succeed.
_PERMANENT_STATUSES = frozenset({400, 405, 410, 413, 415, 422})


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Edge-Signature`` value of ``body`` sent at ``timestamp``."""
    message = timestamp.encode("ascii") + b"." + body
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()
    return _SCHEME + digest


def verify_signature(
    secret: str,
    timestamp: str,
    body: bytes,
    header: str,
    tolerance_s: float,
    now: float,
) -> bool:
    """Whether ``header`` signs ``body`` at ``timestamp`` (unix seconds) under
    ``secret``, and ``timestamp`` lies within ``tolerance_s`` of ``now``."""
    try:
        sent_at = int(timestamp)
    except ValueError:
        return False
    if abs(now - sent_at) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), header.strip())


class WebhookSink:
    """POSTs each event it accepts to one URL."""

    def __init__(self, settings: WebhookSettings, site_id: str, clock: Clock) -> None:
        self._settings = settings
        self._site_id = site_id
        self._clock = clock
        self._types = type_filter(settings.event_types)
        self._session: aiohttp.ClientSession | None = None

    @property
    def name(self) -> str:
        return f"webhook:{self._settings.name}"

    def accepts(self, event_type: str) -> bool:
        return accepts_type(self._types, event_type)

    async def open(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self._settings.timeout_s)
        self._session = aiohttp.ClientSession(timeout=timeout)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def deliver(self, record: OutboxRecord) -> None:
        session = self._session
        if session is None:
            raise DeliveryFailed(f"webhook {self._settings.name} is not open")
        body = encode(envelope(record, self._site_id))
        headers = self._headers(record, body)

        try:
            # Redirects are not followed: a POST is not re-sent to wherever a
            # receiver points, and the configured URL is the one to fix.
            async with session.post(
                self._settings.url, data=body, headers=headers, allow_redirects=False
            ) as response:
                await response.read()
                status = response.status
                retry_after = _seconds(response.headers.get("Retry-After"))
        except (aiohttp.ClientError, TimeoutError) as exc:
            reason = f"POST failed: {type(exc).__name__}: {exc}".rstrip(": ")
            raise DeliveryFailed(reason) from exc

        self._check(status, record, retry_after)

    def _headers(self, record: OutboxRecord, body: bytes) -> dict[str, str]:
        timestamp = str(int(self._clock.now().timestamp()))
        secret = self._settings.secret.get_secret_value()
        return {
            "Content-Type": "application/json",
            EVENT_ID_HEADER: record.id,
            EVENT_TYPE_HEADER: record.type,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(secret, timestamp, body),
        }

    def _check(
        self, status: int, record: OutboxRecord, retry_after: float | None
    ) -> None:
        if 200 <= status < 300:
            logger.debug(
                "Webhook %s took event %d (%s)", self._settings.name, record.seq, status
            )
            return
        permanent = status in _PERMANENT_STATUSES
        raise DeliveryFailed(
            f"receiver answered HTTP {status}",
            permanent=permanent,
            retry_after_s=retry_after,
        )


def _seconds(retry_after: str | None) -> float | None:
    """A ``Retry-After`` in seconds (RFC 9110, 10.2.3); an HTTP date or junk is
    left to the backoff."""
    if retry_after is None or not retry_after.strip().isdigit():
        return None
    return float(retry_after.strip())
