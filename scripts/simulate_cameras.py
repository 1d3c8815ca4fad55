"""Camera simulator: pushes synthetic JPEG frames to the appliance over HTTP.

Each simulated camera posts frames the way a LAN camera does,
``POST {url}/v1/frames`` with the raw JPEG as body, ``Content-Type:
image/jpeg``, ``X-Camera-Id`` and ``X-Captured-At`` headers, at a steady rate
with a little jitter.  A frame shows an enrolled identity, a stranger, or (to
exercise error handling) bytes that are not an image at all.  All cameras run
concurrently over one HTTP session for a fixed time and then stop by
themselves.  A 429 or 503 answer with ``Retry-After`` holds that camera back
as a well-behaved camera would.

Example, against an appliance on port 8080 with alice and bob enrolled::

    python scripts/simulate_cameras.py --url http://127.0.0.1:8080 \\
        --cameras 2 --fps 2 --duration 30 --identity alice --identity bob
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import numpy as np
from synthetic_faces import encode_jpeg, face_image, stranger_identity

LOGGER = logging.getLogger(__name__)

GARBAGE = "garbage"
GARBAGE_PREFIX = b"NOT AN IMAGE "
FRAME_JITTER = 0.2


@dataclass
class SimulationConfig:
    """What to simulate: which cameras, how fast, for how long, showing whom."""

    url: str
    camera_ids: list[str]
    fps: float
    duration_s: float
    identities: list[str]
    stranger_ratio: float = 0.25
    garbage_ratio: float = 0.0
    seed: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    # Camera id -> its API key, sent as X-API-Key like a real camera would.
    api_keys: dict[str, str] = field(default_factory=dict)
    request_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if not self.camera_ids:
            raise ValueError("at least one camera id is needed")
        if self.fps <= 0 or self.duration_s < 0 or self.request_timeout_s <= 0:
            raise ValueError("fps and request timeout must be > 0, duration >= 0")

        ratios = (self.stranger_ratio, self.garbage_ratio)
        if not all(0.0 <= ratio <= 1.0 for ratio in ratios) or sum(ratios) > 1.0:
            raise ValueError("stranger and garbage ratios must lie in [0, 1]")


@dataclass(frozen=True)
class FrameResult:
    """One frame sent and what came back; status 0 means no HTTP answer."""

    camera_id: str
    identity: str
    status: int
    body: dict[str, Any]


ResultCallback = Callable[[FrameResult], None]


async def run_simulation(
    config: SimulationConfig, on_result: ResultCallback | None = None
) -> list[FrameResult]:
    """Run every camera concurrently for ``config.duration_s``; all results."""
    results: list[FrameResult] = []

    def record(result: FrameResult) -> None:
        results.append(result)
        if on_result is not None:
            on_result(result)

    loop = asyncio.get_running_loop()
    deadline = loop.time() + config.duration_s
    timeout = aiohttp.ClientTimeout(total=config.request_timeout_s)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        cameras = [
            _Camera(config, camera_id, session, np.random.default_rng([config.seed, i]))
            for i, camera_id in enumerate(config.camera_ids)
        ]
        async with asyncio.TaskGroup() as group:
            for camera in cameras:
                group.create_task(camera.run(deadline, record))
    return results


class _Camera:
    """One simulated camera: its own random stream and frame schedule."""

    def __init__(
        self,
        config: SimulationConfig,
        camera_id: str,
        session: aiohttp.ClientSession,
        rng: np.random.Generator,
    ) -> None:
        self._config = config
        self._camera_id = camera_id
        self._session = session
        self._rng = rng
        self._url = config.url.rstrip("/") + "/v1/frames"

    async def run(self, deadline: float, record: ResultCallback) -> None:
        loop = asyncio.get_running_loop()
        interval = 1.0 / self._config.fps

        # A random phase keeps cameras from all firing in the same instant.
        next_at = loop.time() + self._rng.uniform(0.0, interval)
        while next_at < deadline:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            result, retry_after = await self._send_one()
            record(result)

            # A camera that fell behind drops frames rather than bursting.
            step = interval * self._rng.uniform(1 - FRAME_JITTER, 1 + FRAME_JITTER)
            next_at = max(next_at + step, loop.time() + retry_after)

    async def _send_one(self) -> tuple[FrameResult, float]:
        # Drawing and JPEG-encoding a frame is CPU work; keep it off the loop.
        identity, body = await asyncio.to_thread(_make_frame, self._config, self._rng)
        headers = {
            "Content-Type": "image/jpeg",
            "X-Camera-Id": self._camera_id,
            "X-Captured-At": _rfc3339_now(),
            **self._config.headers,
        }
        key = self._config.api_keys.get(self._camera_id)
        if key:
            headers["X-API-Key"] = key
        try:
            async with self._session.post(self._url, data=body, headers=headers) as rsp:
                payload = await _read_payload(rsp)
                result = FrameResult(self._camera_id, identity, rsp.status, payload)
                return result, _retry_after(rsp)
        except (aiohttp.ClientError, TimeoutError) as exc:
            LOGGER.debug("camera %s: frame not delivered: %r", self._camera_id, exc)
            failure = {"error": f"{type(exc).__name__}: {exc}"}
            return FrameResult(self._camera_id, identity, 0, failure), 0.0


def _make_frame(
    config: SimulationConfig, rng: np.random.Generator
) -> tuple[str, bytes]:
    draw = rng.random()
    if draw < config.garbage_ratio:
        return GARBAGE, garbage_bytes(rng)

    stranger = draw < config.garbage_ratio + config.stranger_ratio
    if stranger or not config.identities:
        identity = stranger_identity(rng)
    else:
        identity = config.identities[int(rng.integers(len(config.identities)))]
    return identity, encode_jpeg(face_image(identity, rng=rng))


def garbage_bytes(rng: np.random.Generator) -> bytes:
    """Bytes that no image decoder accepts, as a broken camera might send."""
    return GARBAGE_PREFIX + rng.bytes(int(rng.integers(64, 4096)))


def _rfc3339_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def _read_payload(response: aiohttp.ClientResponse) -> dict[str, Any]:
    raw = await response.read()
    try:
        parsed = json.loads(raw)
    except ValueError:
        return {"text": raw.decode("utf-8", errors="replace")[:500]}

    return parsed if isinstance(parsed, dict) else {"value": parsed}


def _retry_after(response: aiohttp.ClientResponse) -> float:
    """Seconds a 429/503 asks us to wait; 0 when it asks nothing."""
    value = response.headers.get("Retry-After")
    if response.status not in (429, 503) or not value:
        return 0.0

    if value.strip().isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return 0.0
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def describe_result(result: FrameResult) -> str:
    """One human-readable line for a frame result."""
    head = f"{result.camera_id:<10} {result.identity:<24} {result.status:>3}"
    if result.status == 0:
        return f"{head} {result.body.get('error', 'no answer')}"
    if result.status >= 400:
        title = result.body.get("title") or result.body.get("text", "")
        return f"{head} {title}: {result.body.get('detail', '')}".rstrip(": ")

    decisions = result.body.get("decisions") or []
    return f"{head} " + ("; ".join(_describe_decision(d) for d in decisions) or "-")


def _describe_decision(decision: dict[str, Any]) -> str:
    text = str(decision.get("outcome", "?"))
    person = decision.get("person")
    if isinstance(person, dict):
        text += f" {person.get('name') or person.get('employee_no')}"
    if decision.get("similarity") is not None:
        text += f" ({float(decision['similarity']):.3f})"

    mark = decision.get("mark")
    if isinstance(mark, dict):
        text += f" {mark.get('kind')} #{mark.get('id')}"
    return text


def _parse_header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected 'Name: value', got {text!r}")
    return name.strip(), value.strip()


def _parse_key(text: str) -> tuple[str, str]:
    camera_id, sep, key = text.partition("=")
    if not sep or not camera_id or not key:
        raise argparse.ArgumentTypeError("expected CAMERA=KEY")
    return camera_id, key


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Push synthetic camera frames.")
    parser.add_argument("--url", required=True, help="appliance base URL")
    cameras = parser.add_mutually_exclusive_group()
    cameras.add_argument("--cameras", type=int, default=1, help="cameras cam-1..N")
    cameras.add_argument("--camera-id", action="append", help="a camera id; repeat")
    parser.add_argument("--fps", type=float, default=1.0, help="frames/s per camera")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds")
    parser.add_argument("--identity", action="append", default=[], help="repeat")
    parser.add_argument("--stranger-ratio", type=float, default=0.25)
    parser.add_argument("--garbage-ratio", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--header", action="append", type=_parse_header, default=[], help="'N: v'"
    )
    parser.add_argument(
        "--api-key", action="append", type=_parse_key, default=[], help="CAMERA=KEY"
    )
    return parser.parse_args(argv)


def _config_from_args(args: argparse.Namespace) -> SimulationConfig:
    camera_ids = args.camera_id or [f"cam-{n}" for n in range(1, args.cameras + 1)]
    return SimulationConfig(
        url=args.url,
        camera_ids=camera_ids,
        fps=args.fps,
        duration_s=args.duration,
        identities=args.identity,
        stranger_ratio=args.stranger_ratio,
        garbage_ratio=args.garbage_ratio,
        seed=args.seed,
        headers=dict(args.header),
        api_keys=dict(args.api_key),
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Run the simulation from the command line, one line per frame."""
    args = _parse_args(argv)
    try:
        config = _config_from_args(args)
    except ValueError as exc:
        sys.exit(f"simulate_cameras: {exc}")

    def show(result: FrameResult) -> None:
        print(describe_result(result), flush=True)

    try:
        results = asyncio.run(run_simulation(config, on_result=show))
    except KeyboardInterrupt:
        sys.exit(130)

    statuses = Counter(result.status for result in results)
    summary = ", ".join(f"{status}: {n}" for status, n in sorted(statuses.items()))
    print(f"{len(results)} frames sent ({summary or 'none'})")


if __name__ == "__main__":
    main()
