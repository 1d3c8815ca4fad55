"""Helpers shared across the test suite: the JPEG upload header, a wall clock
moved by hand, bounded polling and camera registration over HTTP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import aiohttp

JPEG = {"Content-Type": "image/jpeg"}


class ManualClock:
    """A wall clock that stands still until a test moves it."""

    def __init__(self, now: datetime) -> None:
        self.moment = now

    def now(self) -> datetime:
        return self.moment

    def advance(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


async def eventually(check: Callable[[], Any], timeout_s: float = 5.0) -> None:
    """Wait until ``check()`` (sync or async) is truthy, polling, bounded."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError("the condition did not come true in time")
        await asyncio.sleep(0.02)


async def register_camera(api: aiohttp.ClientSession, **fields: Any) -> str:
    """Register a camera with ``fields`` over HTTP; return its API key."""
    async with api.post("/v1/cameras", json=fields) as r:
        assert r.status == 201, await r.text()
        key: str = (await r.json())["api_key"]
    return key
