"""Rate limits: token buckets, the bounded bucket map, failed-auth blocking, 429s."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.typedefs import Handler

from edge_agent.config import RateLimitSettings, RateSpec
from edge_agent.gateway.context import PRINCIPAL
from edge_agent.gateway.problem_details import problem_details_middleware
from edge_agent.gateway.rate_limit import (
    BoundedBuckets,
    FailedAuthLimiter,
    RateLimiter,
    TokenBucket,
    rate_limit_middleware,
)
from edge_agent.models import Principal, PrincipalKind, Role
from tests import servers

GATE = Principal(PrincipalKind.CAMERA, "gate", Role.CAMERA, camera_id="gate")
DOCK = Principal(PrincipalKind.CAMERA, "dock", Role.CAMERA, camera_id="dock")
ALICE = Principal(PrincipalKind.ACCOUNT, "alice", Role.USER)
BOB = Principal(PrincipalKind.ACCOUNT, "bob", Role.USER)

PRINCIPAL_HEADER = "X-Test-Camera"
RATE_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")


class FakeClock:
    """A monotonic clock that moves only when a test moves it."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock standing at an arbitrary instant."""
    return FakeClock()


def test_bucket_grants_its_burst_then_refuses() -> None:
    bucket = TokenBucket(per_s=2.0, burst=3)

    granted = [bucket.take(0.0) for _ in range(3)]
    refused = bucket.take(0.0)

    assert [s.allowed for s in granted] == [True, True, True]
    assert [s.remaining for s in granted] == [2, 1, 0]
    assert {s.limit for s in granted} == {3}
    assert not refused.allowed
    assert refused.remaining == 0


def test_bucket_refills_at_its_rate_up_to_its_burst() -> None:
    bucket = TokenBucket(per_s=2.0, burst=3)
    for _ in range(3):
        bucket.take(100.0)

    assert not bucket.take(100.4).allowed
    assert bucket.take(100.5).allowed
    assert not bucket.take(100.5).allowed

    assert bucket.peek(1_000.0).remaining == 3


@pytest.mark.parametrize(
    ("elapsed_s", "remaining", "reset_s", "retry_after_s"),
    [
        pytest.param(0.0, 0, 8, 2, id="drained"),
        pytest.param(1.0, 0, 7, 1, id="half-a-token"),
        pytest.param(2.0, 1, 6, 0, id="one-token"),
        pytest.param(8.0, 4, 0, 0, id="full-again"),
    ],
)
def test_bucket_reports_reset_and_retry_after(
    elapsed_s: float, remaining: int, reset_s: int, retry_after_s: int
) -> None:
    bucket = TokenBucket(per_s=0.5, burst=4)
    for _ in range(4):
        bucket.take(10.0)

    state = bucket.peek(10.0 + elapsed_s)

    assert (state.remaining, state.reset_s, state.retry_after_s) == (
        remaining,
        reset_s,
        retry_after_s,
    )


def test_refusal_asks_for_at_least_one_second() -> None:
    bucket = TokenBucket(per_s=1_000.0, burst=1)
    bucket.take(0.0)

    state = bucket.take(0.0)

    assert not state.allowed
    assert state.retry_after_s == 1


def test_exact_refill_survives_floating_point(clock: FakeClock) -> None:
    clock.now = 100.0
    bucket = TokenBucket(per_s=10.0, burst=1)
    bucket.take(clock())

    clock.advance(0.1)  # 100.1 - 100.0 is a hair under 0.1 in binary

    assert bucket.take(clock()).allowed


def test_camera_override_replaces_the_camera_spec(clock: FakeClock) -> None:
    settings = RateLimitSettings(
        camera=RateSpec(per_s=10.0, burst=20),
        camera_overrides={"dock": RateSpec(per_s=1.0, burst=2)},
    )
    limiter = RateLimiter(settings, clock)

    assert limiter.check(DOCK).limit == 2
    assert limiter.check(GATE).limit == 20
    assert limiter.check(ALICE).limit == RateLimitSettings().user.burst


def test_each_principal_has_its_own_bucket(clock: FakeClock) -> None:
    limiter = RateLimiter(RateLimitSettings(user=RateSpec(per_s=1.0, burst=2)), clock)
    same_name_camera = Principal(
        PrincipalKind.CAMERA, "alice", Role.CAMERA, camera_id="alice"
    )

    assert [limiter.check(ALICE).allowed for _ in range(3)] == [True, True, False]

    assert limiter.check(BOB).allowed
    assert limiter.check(same_name_camera).allowed


def test_a_subject_shares_one_bucket_across_its_credentials(clock: FakeClock) -> None:
    limiter = RateLimiter(RateLimitSettings(user=RateSpec(per_s=1.0, burst=2)), clock)
    token = Principal(PrincipalKind.TOKEN, "alice", Role.USER, token_id="t1")

    limiter.check(ALICE)
    limiter.check(token)

    assert not limiter.check(ALICE).allowed


def test_buckets_evict_the_least_recently_used() -> None:
    buckets = BoundedBuckets(max_entries=2)

    for key in ("a", "b"):
        buckets.get_or_create(key, lambda: TokenBucket(1.0, 1))
    buckets.get("a")
    buckets.get_or_create("c", lambda: TokenBucket(1.0, 1))

    assert "a" in buckets
    assert "b" not in buckets
    assert "c" in buckets


def test_a_flood_of_keys_stays_within_the_bound() -> None:
    buckets = BoundedBuckets(max_entries=1000)
    hot = buckets.get_or_create("camera:gate", lambda: TokenBucket(1.0, 1))
    keys = random.Random(7)

    for i in range(100_000):
        key = f"user:{keys.getrandbits(64):x}"
        buckets.get_or_create(key, lambda: TokenBucket(1.0, 1))
        if i % 500 == 0:
            buckets.get("camera:gate")

        assert len(buckets) <= 1000

    assert buckets.get("camera:gate") is hot


def test_failed_auth_blocks_an_address_and_then_lets_it_back(
    clock: FakeClock,
) -> None:
    limiter = FailedAuthLimiter(per_minute=3, max_entries=100, clock=clock)

    for _ in range(2):
        limiter.record_failure("10.0.0.9")
        assert limiter.retry_after("10.0.0.9") is None
    limiter.record_failure("10.0.0.9")

    # 3 a minute refill one every 20 s.
    assert limiter.retry_after("10.0.0.9") == 20
    clock.advance(19)
    assert limiter.retry_after("10.0.0.9") == 1
    clock.advance(1)
    assert limiter.retry_after("10.0.0.9") is None

    clock.advance(60)
    for _ in range(2):
        limiter.record_failure("10.0.0.9")
    assert limiter.retry_after("10.0.0.9") is None


def test_failed_auth_never_blocks_an_address_that_has_not_failed(
    clock: FakeClock,
) -> None:
    limiter = FailedAuthLimiter(per_minute=1, max_entries=100, clock=clock)

    limiter.record_failure("10.0.0.9")

    assert limiter.retry_after("10.0.0.9") is not None
    assert limiter.retry_after("10.0.0.10") is None
    assert limiter.retry_after(None) is None


def test_failed_auth_counts_unknown_addresses_together(clock: FakeClock) -> None:
    limiter = FailedAuthLimiter(per_minute=1, max_entries=100, clock=clock)

    limiter.record_failure(None)

    assert limiter.retry_after(None) == 60
    assert limiter.retry_after("unknown") == 60


@web.middleware
async def _principal_from_header(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    """Stand-in for authentication: a camera named by a header, none on /public."""
    camera_id = request.headers.get(PRINCIPAL_HEADER)
    if camera_id is not None and request.path != "/public":
        request[PRINCIPAL] = Principal(
            PrincipalKind.CAMERA, camera_id, Role.CAMERA, camera_id=camera_id
        )
    return await handler(request)


async def _ok(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


@pytest.fixture
async def gateway(clock: FakeClock) -> AsyncIterator[aiohttp.ClientSession]:
    """A session bound to a tiny app behind the rate limit, burst 3 at 1 per s."""
    settings = RateLimitSettings(camera=RateSpec(per_s=1.0, burst=3))
    limiter = RateLimiter(settings, clock)
    app = web.Application(
        middlewares=[
            problem_details_middleware,
            _principal_from_header,
            rate_limit_middleware(limiter),
        ]
    )
    app.router.add_get("/private", _ok)
    app.router.add_get("/public", _ok)
    async with (
        servers.serve(app) as url,
        aiohttp.ClientSession(base_url=url, headers={PRINCIPAL_HEADER: "gate"}) as s,
    ):
        yield s


def _rate_headers(response: aiohttp.ClientResponse) -> tuple[str, ...]:
    return tuple(response.headers[name] for name in RATE_HEADERS)


async def test_granted_responses_count_down(gateway: aiohttp.ClientSession) -> None:
    seen: list[tuple[str, ...]] = []
    for _ in range(3):
        async with gateway.get("/private") as response:
            assert response.status == 200
            seen.append(_rate_headers(response))

    assert seen == [("3", "2", "1"), ("3", "1", "2"), ("3", "0", "3")]


async def test_past_the_burst_is_a_429_problem(
    gateway: aiohttp.ClientSession, clock: FakeClock
) -> None:
    for _ in range(3):
        async with gateway.get("/private") as response:
            assert response.status == 200

    async with gateway.get("/private") as response:
        body = await response.json(content_type=None)

        assert response.status == 429
        assert response.content_type == "application/problem+json"
        assert body["type"].endswith(":rate-limited")
        assert body["status"] == 429
        assert response.headers["Retry-After"] == "1"
        assert _rate_headers(response) == ("3", "0", "3")

    clock.advance(1)
    async with gateway.get("/private") as response:
        assert response.status == 200
        assert response.headers["RateLimit-Remaining"] == "0"


async def test_another_camera_is_not_held_back(gateway: aiohttp.ClientSession) -> None:
    statuses = []
    for _ in range(4):
        async with gateway.get("/private") as response:
            statuses.append(response.status)
    assert statuses[-1] == 429

    async with gateway.get("/private", headers={PRINCIPAL_HEADER: "dock"}) as other:
        assert other.status == 200


async def test_public_routes_are_never_limited(gateway: aiohttp.ClientSession) -> None:
    for _ in range(10):
        async with gateway.get("/public") as response:
            assert response.status == 200
            assert not any(name in response.headers for name in RATE_HEADERS)
