"""Benchmark: frame ingestion by the daemon against plain OpenCV decoding.

In one run it measures:

1. the baseline: single-thread ``cv2.imdecode(..., IMREAD_COLOR)`` of the
   very frames pushed later (in a child process, with each allocator setting);
2. the daemon's saturation throughput: many cameras push as fast as they
   can (from this process, over HTTP) and the clock runs until every frame
   is decided, with an instant recognizer (a child process answering at
   once), for each resolution and allocator setting;
3. latency to the ``202`` at half the saturation rate (open loop), p50/p99;
4. the daemon's peak resident memory (VmHWM).

It prints the figures and the ratio of daemon frames/s to baseline frames/s.
Loopback only; every phase is bounded in frames and time.

    python scripts/bench_ingest.py [--frames 600] [--cameras 16]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import cv2
import numpy as np
from aiohttp import web
from local_services import (
    BIN,
    child_process,
    free_port,
    issue_admin_token,
    stop,
    wait_ready,
)
from synthetic_faces import encode_jpeg, face_image

SIZES = {"480p": (640, 480), "720p": (1280, 720)}
# glibc returns large freed buffers to the system at once by default; raising
# the thresholds keeps frame-sized buffers in the heap for the next frame.
ALLOCATORS = {
    "glibc-default": {},
    "glibc-tuned": {
        "MALLOC_MMAP_THRESHOLD_": str(64 * 1024 * 1024),
        "MALLOC_TRIM_THRESHOLD_": str(256 * 1024 * 1024),
    },
}


def make_frames(size: tuple[int, int], count: int) -> list[bytes]:
    rng = np.random.default_rng(5)
    people = [f"bench-{n}" for n in range(8)]
    return [
        encode_jpeg(face_image(people[n % len(people)], rng=rng, size=size))
        for n in range(count)
    ]


def baseline(frames: list[bytes], seconds: float = 3.0) -> float:
    """Frames/s of plain single-thread decoding."""
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        buffer = np.frombuffer(frames[done % len(frames)], np.uint8)
        cv2.imdecode(buffer, cv2.IMREAD_COLOR)
        done += 1
    return done / (time.perf_counter() - started)


# --- the instant recognizer -------------------------------------------------


async def _instant(request: web.Request) -> web.Response:
    await request.read()
    box = {"probability": 1.0, "x_min": 0, "y_min": 0, "x_max": 9, "y_max": 9}
    return web.json_response({"result": [{"box": box, "subjects": []}]})


def serve_instant_recognizer(port: int) -> None:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/api/v1/recognition/recognize", _instant)
    app.router.add_get("/status", lambda _: _status())
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


async def _status() -> web.Response:
    return web.json_response({"status": "OK"})


# --- driving the daemon -----------------------------------------------------


@dataclass(frozen=True)
class Saturation:
    frames: int
    accept_s: float
    decide_s: float
    peak_rss_mb: float

    @property
    def decided_per_s(self) -> float:
        return self.frames / self.decide_s


async def _register(url: str, token: str, cameras: int) -> list[str]:
    headers = {"Authorization": f"Bearer {token}"}
    keys = []
    async with aiohttp.ClientSession(base_url=url, headers=headers) as session:
        for n in range(cameras):
            async with session.post("/v1/cameras", json={"id": f"bench-{n}"}) as r:
                keys.append((await r.json())["api_key"])
    return keys


async def _push(session: aiohttp.ClientSession, key: str, frame: bytes) -> float:
    headers = {"X-API-Key": key, "Content-Type": "image/jpeg"}
    started = time.perf_counter()
    async with session.post("/v1/frames", data=frame, headers=headers) as response:
        await response.read()
        if response.status != 202:
            raise RuntimeError(f"frame refused: HTTP {response.status}")
    return time.perf_counter() - started


async def _until_drained(session: aiohttp.ClientSession, timeout_s: float) -> None:
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        async with session.get("/readyz") as response:
            if (await response.json())["checks"]["spool_frames"] == 0:
                return
        await asyncio.sleep(0.02)
    raise RuntimeError("the spool did not drain in time")


async def saturate(
    url: str, keys: list[str], frames: list[bytes], pid: int
) -> Saturation:
    pending = list(enumerate(frames))

    async def camera(key: str) -> None:
        while pending:
            _, frame = pending.pop()
            await _push(session, key, frame)

    connector = aiohttp.TCPConnector(limit=len(keys))
    async with aiohttp.ClientSession(base_url=url, connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(camera(key) for key in keys))
        accepted = time.perf_counter() - started
        await _until_drained(session, 120)
        decided = time.perf_counter() - started
    return Saturation(len(frames), accepted, decided, _peak_rss_mb(pid))


async def paced_latency(
    url: str, keys: list[str], frames: list[bytes], rate: float
) -> list[float]:
    """Open loop: one frame every 1/rate s, whatever the answers do."""
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=len(keys) * 4)
    async with aiohttp.ClientSession(base_url=url, connector=connector) as session:
        tasks = []
        started = time.perf_counter()
        for n, frame in enumerate(frames):
            delay = started + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(
                asyncio.create_task(_push(session, keys[n % len(keys)], frame))
            )
        latencies = list(await asyncio.gather(*tasks))
        await _until_drained(session, 120)
    return latencies


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_daemon_case(
    folder: Path,
    recognizer_url: str,
    allocator: dict[str, str],
    frames: list[bytes],
    cameras: int,
) -> tuple[Saturation, list[float]]:
    data_dir = Path(tempfile.mkdtemp(dir=folder))
    port = free_port()
    env = {
        **os.environ,
        **allocator,
        "EDGE_AGENT_RECOGNIZER__URL": recognizer_url,
        "EDGE_AGENT_LOGGING__LEVEL": "WARNING",
        "EDGE_AGENT_RATE_LIMIT__CAMERA__PER_S": "100000",
        "EDGE_AGENT_RATE_LIMIT__CAMERA__BURST": "100000",
        "EDGE_AGENT_SPOOL__MAX_FRAMES": "100000",
        "EDGE_AGENT_SPOOL__DUPLICATE_FRAME_WINDOW_S": "0",
    }
    args = [str(BIN / "edge-agent"), "serve", "--port", str(port)]
    args += ["--data-dir", str(data_dir)]
    url = f"http://127.0.0.1:{port}"
    with child_process(args, folder / "edge-agent.log", env) as daemon:
        wait_ready(f"{url}/healthz", daemon)
        keys = asyncio.run(
            _register(url, issue_admin_token(data_dir, env, subject="bench"), cameras)
        )
        saturation = asyncio.run(saturate(url, keys, frames, daemon.pid))
        rate = saturation.decided_per_s / 2
        latencies = asyncio.run(paced_latency(url, keys, frames[: int(rate * 5)], rate))
        stop(daemon)
    return saturation, latencies


def _baseline_in_child(size: tuple[int, int], count: int, env: dict[str, str]) -> float:
    here = str(Path(__file__).parent)
    code = (
        f"import sys; sys.path.insert(0, {here!r}); import bench_ingest as b; "
        f"print(b.baseline(b.make_frames({size!r}, {count})))"
    )
    output = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return float(output.strip().splitlines()[-1])


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=600)
    parser.add_argument("--cameras", type=int, default=16)
    parser.add_argument("--serve-recognizer", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_recognizer:
        serve_instant_recognizer(args.serve_recognizer)
        return

    folder = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    port = free_port()
    recognizer = [sys.executable, __file__, "--serve-recognizer", str(port)]
    with child_process(recognizer, folder / "recognizer.log") as process:
        wait_ready(f"http://127.0.0.1:{port}/status", process)
        cores = os.cpu_count()
        print(f"{args.frames} frames per case, {args.cameras} cameras, {cores} cores")
        for name, size in SIZES.items():
            frames = make_frames(size, args.frames)
            kib = statistics.mean(len(f) for f in frames) / 1024
            print(f"\n{name} {size[0]}x{size[1]}, JPEG {kib:.0f} KiB on average")
            for allocator, env in ALLOCATORS.items():
                base = _baseline_in_child(size, 60, env)
                sat, lat = run_daemon_case(
                    folder, f"http://127.0.0.1:{port}", env, frames, args.cameras
                )
                print(
                    f"  {allocator:<14} baseline decode {base:6.0f} f/s | daemon "
                    f"{sat.decided_per_s:6.0f} f/s decided "
                    f"({sat.frames / sat.accept_s:6.0f} f/s accepted), "
                    f"ratio {sat.decided_per_s / base:4.2f}x | at "
                    f"{sat.decided_per_s / 2:4.0f} f/s: p50 "
                    f"{_percentile(lat, 0.5) * 1000:5.1f} ms, p99 "
                    f"{_percentile(lat, 0.99) * 1000:5.1f} ms to 202 | peak RSS "
                    f"{sat.peak_rss_mb:5.0f} MiB"
                )


if __name__ == "__main__":
    main()
