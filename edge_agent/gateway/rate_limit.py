"""Gateway: token-bucket rate limits per principal and per failing source address.

Each camera and each signed-in subject has a bucket of ``burst`` tokens that
refills at ``per_s``; a request takes one token and is refused with 429 when
none is left. A second set of buckets, keyed by source address, counts failed
authentications so that guessing keys or passwords is slowed to a trickle.
Buckets live in memory in least-recently-used maps of bounded size, so they
are lost on restart and not shared between processes, which suits a single
appliance serving one site.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from edge_agent.config import RateLimitSettings, RateSpec
from edge_agent.errors import RateLimited
from edge_agent.gateway.context import PRINCIPAL
from edge_agent.models import Principal, PrincipalKind

logger = logging.getLogger(__name__)

Clock = Callable[[], float]

# Differences of two clock readings land a hair off the exact value in floating
# point (100.1 - 100.0 is 0.0999...); without this slack a bucket refilled for
# exactly one token would still refuse, and a ceiling would round up a second.
_EPSILON = 1e-9

UNKNOWN_ADDRESS = "unknown"


@dataclass(frozen=True, slots=True)
class BucketState:
    """A bucket's answer to one request, in whole tokens and whole seconds."""

    allowed: bool
    limit: int
    remaining: int
    reset_s: int
    retry_after_s: int


class TokenBucket:
    """``burst`` tokens, refilled continuously at ``per_s``; starts full."""

    __slots__ = ("_burst", "_per_s", "_tokens", "_updated")

    def __init__(self, per_s: float, burst: int) -> None:
        if per_s <= 0 or burst < 1:
            raise ValueError("a token bucket needs per_s > 0 and burst >= 1")
        self._per_s = per_s
        self._burst = burst
        self._tokens = float(burst)
        self._updated: float | None = None

    def take(self, now: float) -> BucketState:
        """Take one token if there is one; say whether it was granted."""
        self._refill(now)

        allowed = self._tokens + _EPSILON >= 1
        if allowed:
            self._tokens = max(self._tokens - 1, 0.0)

        return self._state(allowed)

    def peek(self, now: float) -> BucketState:
        """Report whether a token is available, without taking it."""
        self._refill(now)
        return self._state(self._tokens + _EPSILON >= 1)

    def _refill(self, now: float) -> None:
        # A clock that steps back (only a test's can) must not drain the bucket.
        elapsed = 0.0 if self._updated is None else max(now - self._updated, 0.0)
        self._tokens = min(self._tokens + elapsed * self._per_s, float(self._burst))
        self._updated = now

    def _state(self, allowed: bool) -> BucketState:
        missing_for_one = max(1 - self._tokens, 0.0)
        retry_after_s = _ceil_s(missing_for_one / self._per_s)
        return BucketState(
            allowed=allowed,
            limit=self._burst,
            remaining=math.floor(self._tokens + _EPSILON),
            reset_s=_ceil_s((self._burst - self._tokens) / self._per_s),
            retry_after_s=retry_after_s if allowed else max(retry_after_s, 1),
        )


def _ceil_s(seconds: float) -> int:
    return max(math.ceil(seconds - _EPSILON), 0)


class BoundedBuckets:
    """Buckets by key, at most ``max_entries``; the least recently used go first.

    The bound is what keeps a flood of distinct keys (addresses, subjects) from
    growing memory without limit.
    """

    def __init__(self, max_entries: int) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max_entries = max_entries
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def __contains__(self, key: object) -> bool:
        return key in self._buckets

    def get(self, key: str) -> TokenBucket | None:
        """The bucket for ``key``, marked as just used; None when there is none."""
        bucket = self._buckets.get(key)
        if bucket is not None:
            self._buckets.move_to_end(key)
        return bucket

    def get_or_create(self, key: str, create: Callable[[], TokenBucket]) -> TokenBucket:
        """The bucket for ``key``, made by ``create`` when missing; evicts to fit."""
        bucket = self.get(key)
        if bucket is not None:
            return bucket

        bucket = self._buckets[key] = create()
        while len(self._buckets) > self._max_entries:
            self._buckets.popitem(last=False)
        return bucket


class RateLimiter:
    """One bucket per camera and per user subject, sized by the settings."""

    def __init__(
        self, settings: RateLimitSettings, clock: Clock = time.monotonic
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._buckets = BoundedBuckets(settings.max_buckets)

    def check(self, principal: Principal) -> BucketState:
        """Spend one token of ``principal``'s bucket; say whether it was granted."""
        key, spec = self._bucket_for(principal)
        bucket = self._buckets.get_or_create(
            key, lambda: TokenBucket(spec.per_s, spec.burst)
        )
        return bucket.take(self._clock())

    def _bucket_for(self, principal: Principal) -> tuple[str, RateSpec]:
        if principal.kind is not PrincipalKind.CAMERA:
            return f"user:{principal.subject}", self._settings.user

        # A camera principal always names its camera; the subject is only a
        # fallback so that a malformed one still lands in a camera bucket.
        camera_id = principal.camera_id or principal.subject
        spec = self._settings.camera_overrides.get(camera_id, self._settings.camera)
        return f"camera:{camera_id}", spec


class FailedAuthLimiter:
    """Failed authentications per source address; past ``per_minute`` it blocks.

    Only failures are counted, so an address that has never failed is never
    blocked. Eviction forgets the oldest addresses first: a client able to send
    from more than ``max_entries`` distinct addresses can flush its own record
    and so guess faster than ``per_minute``, which the bound accepts as the
    price of fixed memory.
    """

    def __init__(
        self, per_minute: int, max_entries: int, clock: Clock = time.monotonic
    ) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        self._per_minute = per_minute
        self._clock = clock
        self._buckets = BoundedBuckets(max_entries)

    def retry_after(self, address: str | None) -> int | None:
        """Seconds ``address`` must wait before it may try again; None if it may."""
        bucket = self._buckets.get(address or UNKNOWN_ADDRESS)
        if bucket is None:
            return None

        state = bucket.peek(self._clock())
        return None if state.allowed else state.retry_after_s

    def record_failure(self, address: str | None) -> None:
        """Count one failed authentication from ``address``."""
        key = address or UNKNOWN_ADDRESS
        bucket = self._buckets.get_or_create(
            key, lambda: TokenBucket(self._per_minute / 60, self._per_minute)
        )

        state = bucket.take(self._clock())
        if state.allowed and state.remaining == 0:
            logger.warning(
                "Source address %s blocked for %d s after %d failed authentications",
                key,
                state.retry_after_s,
                self._per_minute,
            )


def rate_limit_headers(state: BucketState) -> dict[str, str]:
    """The three RateLimit fields of draft-ietf-httpapi-ratelimit-headers-06.

    As that draft defines them: ``RateLimit-Limit`` is the quota (here the
    burst), ``RateLimit-Remaining`` what is left of it and ``RateLimit-Reset``
    the delta-seconds until it is whole again. Revisions from -07 on fold them
    into ``RateLimit`` and ``RateLimit-Policy``; this is the earlier form.
    """
    return {
        "RateLimit-Limit": str(state.limit),
        "RateLimit-Remaining": str(state.remaining),
        "RateLimit-Reset": str(state.reset_s),
    }


def rate_limit_middleware(limiter: RateLimiter) -> Middleware:
    """Spend a token per authenticated request; refuse with 429 when none is left.

    Public routes carry no principal and pass untouched. Must sit after the
    authentication middleware and inside the problem+json middleware.
    """

    @web.middleware
    async def rate_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
        if PRINCIPAL not in request:
            return await handler(request)

        principal = request[PRINCIPAL]
        state = limiter.check(principal)
        headers = rate_limit_headers(state)
        if not state.allowed:
            logger.debug("Rate limit refused %s on %s", principal.label, request.path)
            raise RateLimited(
                f"rate limit of {state.limit} requests reached; "
                f"retry in {state.retry_after_s} s",
                retry_after_s=state.retry_after_s,
                headers=headers,
            )

        # An HTTPException raised by the handler passes through as it is; the
        # headers go only on responses the handler returns.
        response = await handler(request)
        response.headers.update(headers)
        return response

    return rate_limit
