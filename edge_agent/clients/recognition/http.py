"""Recognition client: the pooled aiohttp session an adapter opens and closes.

Every request it sends carries the current W3C ``traceparent``, so the
recognizer's own traces join the frame's. :meth:`PooledSession.send` is where
the transport's errors become :class:`RecognizerCallFailed` for every adapter.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

import aiohttp

from edge_agent.clients.recognition.base import RecognizerCallFailed
from edge_agent.observability.tracing import TRACEPARENT_HEADER, outgoing_traceparent


class PooledSession:
    """One connection pool per adapter, with connect and whole-call timeouts."""

    def __init__(
        self,
        headers: dict[str, str],
        *,
        timeout_s: float,
        connect_timeout_s: float,
        pool_size: int,
    ) -> None:
        self._headers = headers
        self._timeout = aiohttp.ClientTimeout(
            total=timeout_s, sock_connect=connect_timeout_s
        )
        self._pool_size = pool_size
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._pool_size)
            self._session = aiohttp.ClientSession(
                headers=self._headers,
                timeout=self._timeout,
                connector=connector,
                trace_configs=[_propagation()],
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def client(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RecognizerCallFailed(
                "the recognizer client is not open", transient=False
            )
        return self._session

    async def send(
        self,
        method: str,
        url: str,
        label: str,
        *,
        params: Mapping[str, Any] | None = None,
        data: aiohttp.FormData | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """The answer's status and JSON object (``{}`` when it holds none);
        a transport failure or timeout is a transient
        :class:`RecognizerCallFailed` naming ``method`` and ``label``."""
        try:
            async with self.client.request(
                method, url, params=params, data=data
            ) as response:
                return response.status, await _json(response)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RecognizerCallFailed(
                f"recognizer call {method} {label} failed: {exc!r}", transient=True
            ) from exc


async def _json(response: aiohttp.ClientResponse) -> dict[str, Any]:
    try:
        body = await response.json(content_type=None)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _propagation() -> aiohttp.TraceConfig:
    config = aiohttp.TraceConfig()
    config.on_request_start.append(_add_traceparent)
    return config


async def _add_traceparent(
    session: aiohttp.ClientSession,
    context: SimpleNamespace,
    params: aiohttp.TraceRequestStartParams,
) -> None:
    traceparent = outgoing_traceparent()
    if traceparent is not None:
        params.headers[TRACEPARENT_HEADER] = traceparent
