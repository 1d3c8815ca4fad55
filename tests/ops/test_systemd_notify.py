"""``edge-agent serve`` under a service manager: sd_notify over a real socket."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from local_services import BIN, free_port, wait_ready

# Pings every 0.25 s, so that the test sees several within its waits.
WATCHDOG_USEC = "500000"


class NotifyListener:
    """The service manager's end: a datagram socket collecting notifications."""

    def __init__(self, sock: socket.socket, address: str) -> None:
        self.sock = sock
        self.address = address
        self.messages: list[str] = []

    def wait_for(self, assignment: str, timeout_s: float = 20) -> str:
        """The first message (seen or still to come) holding ``assignment``."""
        deadline = time.monotonic() + timeout_s
        while True:
            for message in self.messages:
                if assignment in message.split("\n"):
                    return message
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {assignment} in {self.messages!r}")
            self.sock.settimeout(remaining)
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except TimeoutError:
                continue


@pytest.fixture(params=["path", "abstract"])
def listener(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[NotifyListener]:
    """A notify socket on a file path, or in the abstract namespace ('@...')."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if request.param == "path":
        address = str(tmp_path / "notify.sock")
        sock.bind(address)
    else:
        name = f"edge-agent-test-{os.getpid()}-{time.monotonic_ns()}"
        sock.bind("\0" + name)
        address = "@" + name
    with sock:
        yield NotifyListener(sock, address)


def test_serve_notifies_ready_status_watchdog_and_stopping(
    tmp_path: Path, listener: NotifyListener
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "NOTIFY_SOCKET": listener.address,
        "WATCHDOG_USEC": WATCHDOG_USEC,
        # Nothing listens there; the daemon starts without its recognizer.
        "EDGE_AGENT_RECOGNIZER__URL": f"http://127.0.0.1:{free_port()}",
        "EDGE_AGENT_LOGGING__FORMAT": "json",
    }
    args = [str(BIN / "edge-agent"), "serve", "--port", str(port)]
    args += ["--data-dir", str(tmp_path / "data")]
    with (tmp_path / "serve.log").open("wb") as log:
        daemon = subprocess.Popen(args, env=env, stdout=log, stderr=log)
        try:
            ready = listener.wait_for("READY=1")
            wait_ready(f"http://127.0.0.1:{port}/healthz", daemon)
            listener.messages.clear()
            ping = listener.wait_for("WATCHDOG=1", timeout_s=5)
            daemon.send_signal(signal.SIGTERM)
            stopping = listener.wait_for("STOPPING=1", timeout_s=10)
            code = daemon.wait(timeout=15)
        finally:
            daemon.kill()
            daemon.wait()

    assert f"STATUS=serving on 127.0.0.1:{port}, 0 frames queued" in ready
    assert "STATUS=serving on" in ping
    assert "STATUS=stopping" in stopping
    assert code == 0


def test_serve_refuses_a_data_folder_another_daemon_holds(tmp_path: Path) -> None:
    from edge_agent.clients.storage.lock import DataDirLock

    data = tmp_path / "data"
    with DataDirLock(data, "a test"):
        result = subprocess.run(
            [str(BIN / "edge-agent"), "serve", "--port", "0", "--data-dir", str(data)],
            capture_output=True,
            text=True,
            timeout=30,
            env={**os.environ, "EDGE_AGENT_LOGGING__FORMAT": "json"},
        )

    assert result.returncode == 1
    assert f"{data} is in use by a test (pid {os.getpid()})" in result.stderr
    assert "Traceback" not in result.stderr
