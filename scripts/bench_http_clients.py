"""Benchmark: aiohttp's and httpx's async clients against a local JSON server.

The recognizer is called once per frame, so its client's CPU cost per
request matters. This starts a small aiohttp JSON server in a child process,
then drives it from this process with each client at a given concurrency,
and prints requests/s and this process's CPU time per request, with the
ratio between the two. Loopback only; every run is bounded by --requests.

    python scripts/bench_http_clients.py [--requests 3000] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp
import httpx
from aiohttp import web
from local_services import free_port, wait_ready

BODY = {"result": [{"box": {"x_min": 0, "y_min": 0, "x_max": 9, "y_max": 9}}]}


async def _answer(request: web.Request) -> web.Response:
    await request.read()
    return web.json_response(BODY)


def serve(port: int) -> None:
    app = web.Application()
    app.router.add_post("/recognize", _answer)
    app.router.add_get("/status", lambda _: _answer_status())
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


async def _answer_status() -> web.Response:
    return web.json_response({"status": "OK"})


@dataclass(frozen=True)
class Result:
    name: str
    requests: int
    seconds: float
    cpu_seconds: float

    def line(self) -> str:
        return (
            f"{self.name:<8} {self.requests / self.seconds:8.0f} req/s   "
            f"{self.cpu_seconds / self.requests * 1000:6.3f} ms CPU/request"
        )


async def _drive(
    name: str, call: Callable[[], Awaitable[None]], requests: int, concurrency: int
) -> Result:
    remaining = requests

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await call()

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Result(name, requests, time.perf_counter() - wall, time.process_time() - cpu)


async def _aiohttp(url: str, payload: bytes, requests: int, concurrency: int) -> Result:
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def call() -> None:
            async with session.post(url, data=payload) as response:
                await response.json()

        await call()
        return await _drive("aiohttp", call, requests, concurrency)


async def _httpx(url: str, payload: bytes, requests: int, concurrency: int) -> Result:
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(limits=limits) as client:

        async def call() -> None:
            response = await client.post(url, content=payload)
            response.json()

        await call()
        return await _drive("httpx", call, requests, concurrency)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--payload-kb", type=int, default=60)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return

    port = free_port()
    child = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
    try:
        wait_ready(f"http://127.0.0.1:{port}/status", child)
        url = f"http://127.0.0.1:{port}/recognize"
        payload = os.urandom(args.payload_kb * 1024)
        fast = asyncio.run(_aiohttp(url, payload, args.requests, args.concurrency))
        slow = asyncio.run(_httpx(url, payload, args.requests, args.concurrency))
    finally:
        child.terminate()
        child.wait()

    print(f"{args.requests} POSTs of {args.payload_kb} KiB, {args.concurrency} at once")
    print(fast.line())
    print(slow.line())
    ratio = (slow.cpu_seconds / slow.requests) / (fast.cpu_seconds / fast.requests)
    print(f"httpx spends {ratio:.1f}x the CPU of aiohttp per request")


if __name__ == "__main__":
    main()
