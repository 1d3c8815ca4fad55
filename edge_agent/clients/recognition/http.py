"""Recognition client: the pooled aiohttp session an adapter opens and closes."""

from __future__ import annotations

import aiohttp

from edge_agent.clients.recognition.base import RecognizerCallFailed


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
                headers=self._headers, timeout=self._timeout, connector=connector
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
