"""A real webhook receiver for tests: an aiohttp server on a loopback port.

It records every request it answers, answers with whatever status it is told
to, and can be taken down and brought back up on the same port, so a sender
meets refused connections in between.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web


@dataclass(frozen=True)
class ReceivedRequest:
    headers: dict[str, str]
    body: bytes
    # time.monotonic() when it arrived.
    received_at: float = 0.0

    @property
    def event(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.body)
        return document


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class WebhookReceiver:
    """Records POSTs to ``/hook``; ``status`` is what it answers."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.status = 200
        # Headers it answers with, e.g. Retry-After with a 429.
        self.answer_headers: dict[str, str] = {}
        self.requests: list[ReceivedRequest] = []
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    @property
    def events(self) -> list[dict[str, Any]]:
        """The bodies of the requests it answered with a 2xx."""
        return [r.event for r in self.requests if "accepted" in r.headers]

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._receive)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()

    async def stop(self) -> None:
        """Stop listening: connections to the port are refused until start()."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def wait_for_events(self, count: int, timeout_s: float = 5.0) -> None:
        """Wait until at least ``count`` requests were answered with a 2xx."""
        deadline = time.monotonic() + timeout_s
        while len(self.events) < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{len(self.events)} of {count} events arrived in {timeout_s} s"
                )
            await asyncio.sleep(0.01)

    async def _receive(self, request: web.Request) -> web.Response:
        headers = dict(request.headers)
        status = self.status
        if 200 <= status < 300:
            headers["accepted"] = "1"
        body = await request.read()
        self.requests.append(ReceivedRequest(headers, body, time.monotonic()))
        return web.Response(status=status, headers=self.answer_headers)
