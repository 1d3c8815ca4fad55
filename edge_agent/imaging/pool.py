"""Imaging: run the blocking decoder on a bounded thread pool, off the event loop.

OpenCV releases the GIL while it decodes, so threads use every core; the
pool's size bounds how many frames are decoded (and held in memory) at once.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from edge_agent.config import ImagingSettings
from edge_agent.imaging.normalize import PreparedImage, prepare_image


class DecodePool:
    """At most ``workers`` frames prepared at once, each on a thread of its own."""

    def __init__(self, workers: int) -> None:
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="decode")

    async def prepare(self, data: bytes, settings: ImagingSettings) -> PreparedImage:
        """Inspect, decode, normalize and check a frame, off the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, prepare_image, data, settings)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
