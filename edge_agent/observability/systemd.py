"""Observability: systemd notifications of readiness, status, watchdog, stopping.

The protocol is sd_notify(3): newline-separated ``KEY=VALUE`` assignments in
one datagram to the ``AF_UNIX`` socket named by ``$NOTIFY_SOCKET``; a name
starting with ``@`` is in the abstract namespace. With ``WatchdogSec=`` in the
unit, systemd sets ``$WATCHDOG_USEC`` and restarts the service when no
``WATCHDOG=1`` arrives within it; sd_watchdog_enabled(3) advises pinging at
half that interval. Every call is a no-op when ``$NOTIFY_SOCKET`` is unset,
so the daemon behaves the same outside systemd.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Mapping

logger = logging.getLogger(__name__)

# How often STATUS is refreshed when the unit has no watchdog.
STATUS_INTERVAL_S = 10.0

StatusSource = Callable[[], Awaitable[str]]


class SystemdNotifier:
    """Sends sd_notify datagrams to one socket; silent when there is none."""

    def __init__(self, address: str | None) -> None:
        self._address = _socket_address(address)
        self._socket: socket.socket | None = None
        self._warned = False

    @classmethod
    def from_environment(
        cls, environ: Mapping[str, str] | None = None
    ) -> SystemdNotifier:
        env = os.environ if environ is None else environ
        return cls(env.get("NOTIFY_SOCKET") or None)

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def ready(self, status: str) -> None:
        self.notify("READY=1", f"STATUS={status}")

    def status(self, status: str) -> None:
        self.notify(f"STATUS={status}")

    def watchdog(self, status: str | None = None) -> None:
        self.notify("WATCHDOG=1", *([f"STATUS={status}"] if status else []))

    def stopping(self, status: str = "stopping") -> None:
        self.notify("STOPPING=1", f"STATUS={status}")

    def notify(self, *assignments: str) -> None:
        """Send the assignments in one datagram; a failed send is only logged."""
        if self._address is None:
            return
        message = "\n".join(_one_line(a) for a in assignments).encode("utf-8")
        try:
            self._open().sendto(message, self._address)
        except OSError as exc:
            # The service manager going away must not stop the daemon; say so
            # once rather than on every ping.
            if not self._warned:
                logger.warning("Notify socket %s refused a message: %s", self, exc)
                self._warned = True

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def _open(self) -> socket.socket:
        if self._socket is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.setblocking(False)
            self._socket = sock
        return self._socket

    def __str__(self) -> str:
        return repr(self._address)


def _socket_address(address: str | None) -> str | None:
    if not address:
        return None
    if address.startswith("@"):
        return "\0" + address[1:]
    if address.startswith("/"):
        return address
    # systemd 256 may also name a vsock address; this daemon runs beside its
    # service manager, so anything but a local socket is ignored.
    logger.warning("Notify socket %r is not a local socket; ignored", address)
    return None


def _one_line(assignment: str) -> str:
    """A value with a newline would start a second, unintended assignment."""
    return assignment.replace("\n", " ")


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """Seconds between pings (half of ``$WATCHDOG_USEC``), or None without one.

    ``$WATCHDOG_PID``, when set, names the process the watchdog is for; any
    other process (a child that inherited the environment) must not ping.
    """
    env = os.environ if environ is None else environ
    pid = env.get("WATCHDOG_PID")
    if pid and pid != str(os.getpid()):
        return None
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec / 2 / 1_000_000 if usec > 0 else None


async def heartbeat(
    notifier: SystemdNotifier, interval_s: float | None, status: StatusSource
) -> None:
    """Ping the watchdog (when there is one) and refresh STATUS, until cancelled.

    This runs as a task on the daemon's event loop on purpose: a loop stuck in
    blocking work stops the pings, and systemd restarts the daemon.
    """
    while True:
        text = await _status_or_none(status)
        if interval_s is None:
            if text:
                notifier.status(text)
        else:
            notifier.watchdog(text)
        await asyncio.sleep(interval_s or STATUS_INTERVAL_S)


async def _status_or_none(status: StatusSource) -> str | None:
    try:
        return await status()
    except asyncio.CancelledError:
        raise
    except Exception:
        # A status line is a courtesy; the ping that follows it is what matters.
        logger.exception("Service status could not be read")
        return None
