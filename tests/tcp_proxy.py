"""A TCP forwarder for tests, to lose a connection the way a network does.

Clients connect to the proxy's loopback port and are piped to the target.
:meth:`TcpProxy.cut` aborts every piped connection at once, in both
directions, without a protocol goodbye; :meth:`TcpProxy.stop` also stops
listening, so reconnects are refused until :meth:`TcpProxy.start`.
"""

from __future__ import annotations

import asyncio
import contextlib

from tests.webhook_receiver import free_port


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._pipes: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, "127.0.0.1", self.port, reuse_address=True
        )

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        self.cut()
        if self._pipes:
            await asyncio.wait(self._pipes)

    def cut(self) -> None:
        """Abort every forwarded connection (a reset, not a clean close)."""
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _accept(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(_pipe(source, sink), name="tcp-proxy-pipe")
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Copy until the source ends, then end the other side the same way."""
    with contextlib.suppress(ConnectionError, OSError):
        while chunk := await source.read(65536):
            sink.write(chunk)
            await sink.drain()
    sink.close()
