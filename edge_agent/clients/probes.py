"""Client: active probes of cameras, an HTTP snapshot or an RTSP OPTIONS request.

A probe never raises for what the network or the camera does: every failure
becomes a :class:`ProbeResult` whose ``detail`` says why, with any
credentials of the URL masked, so the result can be logged and stored.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from edge_agent.imaging.video import display_url

logger = logging.getLogger(__name__)

RTSP_DEFAULT_PORT = 554
# Enough of a body to tell an image from an error page.
_SNIFF_BYTES = 12
_MAX_DETAIL_CHARS = 200
_IMAGE_MAGIC = (
    b"\xff\xd8\xff",  # JPEG
    b"\x89PNG\r\n\x1a\n",
    b"GIF87a",
    b"GIF89a",
    b"BM",
)


@dataclass(frozen=True, slots=True)
class ProbeResult:
    ok: bool
    detail: str
    elapsed_s: float


class ProbeClient:
    """Runs probes, at most ``max_concurrent`` at once, each within ``timeout_s``.

    The HTTP session is made on the first HTTP probe and closed by
    :meth:`close`.
    """

    def __init__(self, timeout_s: float, max_concurrent: int) -> None:
        self._timeout_s = timeout_s
        self._slots = asyncio.Semaphore(max_concurrent)
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def probe(self, url: str) -> ProbeResult:
        """Probe ``url`` (http, https or rtsp); the wait for a slot is not timed."""
        async with self._slots:
            started = time.monotonic()
            try:
                async with asyncio.timeout(self._timeout_s):
                    detail = await self._probe(url)
            except TimeoutError:
                detail = f"no answer within {self._timeout_s:g} s"
            except (aiohttp.ClientError, OSError, ValueError) as exc:
                detail = _describe(exc, url)
            elapsed = time.monotonic() - started
        ok = detail == ""
        if not ok:
            logger.debug("Probe of %s failed: %s", display_url(url), detail)
        return ProbeResult(ok, detail or "ok", elapsed)

    async def _probe(self, url: str) -> str:
        """Empty when the camera answered as it should, else why not."""
        scheme = urlsplit(url).scheme
        if scheme in ("http", "https"):
            return await self._http(url)
        if scheme == "rtsp":
            return await rtsp_options(url)
        return f"cannot probe a {scheme or 'schemeless'} URL"

    async def _http(self, url: str) -> str:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        async with self._session.get(url, allow_redirects=False) as response:
            if response.status != 200:
                return f"HTTP {response.status}"
            head = await _read_head(response.content)
        if not looks_like_image(head):
            return "the answer is not an image"
        return ""


async def _read_head(content: aiohttp.StreamReader) -> bytes:
    head = b""
    while len(head) < _SNIFF_BYTES:
        chunk = await content.read(_SNIFF_BYTES - len(head))
        if not chunk:
            break
        head += chunk
    return head


def looks_like_image(head: bytes) -> bool:
    """Whether ``head`` starts like a JPEG, PNG, GIF, BMP or WebP file."""
    if head.startswith(_IMAGE_MAGIC):
        return True
    return head[:4] == b"RIFF" and head[8:12] == b"WEBP"


async def rtsp_options(url: str) -> str:
    """Send ``OPTIONS`` (RFC 2326, 10.1); empty when the server answers 200."""
    parts = urlsplit(url)
    if not parts.hostname:
        return "the URL names no host"
    reader, writer = await asyncio.open_connection(
        parts.hostname, parts.port or RTSP_DEFAULT_PORT
    )
    try:
        writer.write(_options_request(url))
        await writer.drain()
        status = await reader.readline()
    finally:
        writer.close()
        await writer.wait_closed()
    if status.startswith(b"RTSP/1.0 200"):
        return ""
    if not status:
        return "the server closed the connection without an answer"
    shown = status.decode("ascii", "replace").strip()[:_MAX_DETAIL_CHARS]
    return f"answered {shown!r}"


def _options_request(url: str) -> bytes:
    # The request line carries the URL without its credentials: OPTIONS is
    # answered without authentication (RFC 2326, 10.1), and the line may be
    # logged by the camera.
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    bare = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    return f"OPTIONS {bare} RTSP/1.0\r\nCSeq: 1\r\n\r\n".encode()


def _describe(exc: Exception, url: str) -> str:
    """Why a probe failed, without the URL's password."""
    text = f"{type(exc).__name__}: {exc}"
    password = urlsplit(url).password
    if password:
        text = text.replace(password, "***")
    return text[:_MAX_DETAIL_CHARS]
