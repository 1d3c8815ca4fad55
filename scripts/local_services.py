"""Start the appliance and the reference recognizer as local child processes.

Shared by the demo and the end-to-end tests, so both exercise the same real
servers the same way: free loopback ports, readiness polling, SIGTERM on exit.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Service:
    url: str
    process: subprocess.Popen[bytes]
    # An admin token for the appliance (empty for the recognizer).
    admin_token: str = ""

    @property
    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}


def free_port() -> int:
    """A port free on 127.0.0.1 right now (another process could still take it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_ready(
    url: str, process: subprocess.Popen[bytes], timeout_s: float = 30
) -> None:
    """Poll ``url`` until it answers 200; fail if the process dies first."""
    if not _poll(url, process, timeout_s, lambda status: status == 200):
        raise RuntimeError(f"{url} did not become ready within {timeout_s} s")


def wait_listening(
    url: str, process: subprocess.Popen[bytes], timeout_s: float = 30
) -> None:
    """Poll ``url`` until it answers at all (any status); fail if the process
    dies first. For servers whose every route wants a token."""
    if not _poll(url, process, timeout_s, lambda status: True):
        raise RuntimeError(f"{url} did not answer within {timeout_s} s")


def _poll(
    url: str,
    process: subprocess.Popen[bytes],
    timeout_s: float,
    accept: Callable[[int], bool],
) -> bool:
    """Whether ``url`` gave an accepted status in time; raise if ``process`` dies."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        with contextlib.suppress(httpx.TransportError):
            if accept(httpx.get(url, timeout=1).status_code):
                return True
        time.sleep(0.1)
    return False


@contextlib.contextmanager
def child_process(
    args: list[str], log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``args`` with its output appended to ``log``; SIGTERM it on exit."""
    with log.open("ab") as out:
        # A session of its own: a Ctrl-C reaches only the parent, which then
        # stops its children in order.
        process = subprocess.Popen(
            args, stdout=out, stderr=out, env=env, start_new_session=True
        )
        try:
            yield process
        finally:
            stop(process)


def stop(process: subprocess.Popen[bytes], timeout_s: float = 15) -> int:
    """SIGTERM the process, SIGKILL it if it lingers; return its exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


@contextlib.contextmanager
def reference_recognizer(
    folder: Path, api_key: str, store: Path | None = None, port: int | None = None
) -> Iterator[Service]:
    port = port or free_port()
    args = [
        sys.executable,
        str(ROOT / "scripts" / "reference_recognizer.py"),
        *("--host", "127.0.0.1", "--port", str(port), "--api-key", api_key),
    ]
    if store is not None:
        args += ["--store", str(store)]
    url = f"http://127.0.0.1:{port}"
    with child_process(args, folder / "recognizer.log") as process:
        wait_ready(f"{url}/status", process)
        yield Service(url, process)


@contextlib.contextmanager
def edge_agent(
    folder: Path,
    data_dir: Path,
    recognizer_url: str,
    api_key: str,
    settings_env: dict[str, str] | None = None,
) -> Iterator[Service]:
    """``edge-agent serve`` on its embedded defaults, but for port, data and
    the recognizer it is to use."""
    port = free_port()
    args = [
        str(BIN / "edge-agent"),
        "serve",
        *("--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir)),
    ]
    env = {
        **os.environ,
        "EDGE_AGENT_RECOGNIZER__URL": recognizer_url,
        "EDGE_AGENT_RECOGNIZER__API_KEY": api_key,
        "EDGE_AGENT_LOGGING__FORMAT": "json",
        **(settings_env or {}),
    }
    url = f"http://127.0.0.1:{port}"
    with child_process(args, folder / "edge-agent.log", env) as process:
        wait_ready(f"{url}/healthz", process)
        yield Service(url, process, issue_admin_token(data_dir, env))


def issue_admin_token(
    data_dir: Path, env: dict[str, str] | None = None, subject: str = "local-services"
) -> str:
    """An admin token from the site admin CLI, as an installer would get one."""
    output = subprocess.run(
        [
            str(BIN / "edge-agent"),
            "tokens",
            "issue",
            *("--subject", subject, "--role", "admin", "--ttl", "3600"),
            *("--json", "--data-dir", str(data_dir)),
        ],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    token: str = json.loads(output)["token"]
    return token


def cloud_sync_config(
    folder: Path, database_url: str, admin_token: str, port: int
) -> Path:
    """A ``cloud-sync`` TOML config: the store, a fixed port, the office token."""
    from cloud_sync.server.tokens import token_hash

    config = folder / "cloud-sync.toml"
    config.write_text(
        f'[database]\nurl = "{database_url}"\n'
        f'[server]\nhost = "127.0.0.1"\nport = {port}\n'
        f'[admin]\ntoken_sha256 = "{token_hash(admin_token)}"\n'
        '[logging]\nlevel = "WARNING"\n',
        encoding="utf-8",
    )
    return config


def cloud_sync_add_site(config: Path, site_id: str) -> str:
    """Register ``site_id`` with ``cloud-sync sites add``; return its token."""
    output = subprocess.run(
        [str(BIN / "cloud-sync"), "sites", "add", site_id, "--config", str(config)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    # The token is the last line; the line before it says it is shown once.
    return output.strip().splitlines()[-1].strip()


@contextlib.contextmanager
def cloud_sync_server(folder: Path, config: Path, port: int) -> Iterator[Service]:
    """``cloud-sync serve`` on ``config`` (whose port is ``port``); SIGTERM on
    exit. The same config and port serve again after a stop, so a site keeps
    its sync URL across restarts of the central server."""
    args = [str(BIN / "cloud-sync"), "serve", "--config", str(config)]
    url = f"http://127.0.0.1:{port}"
    with child_process(args, folder / "cloud-sync.log") as process:
        wait_listening(f"{url}/v1/sites", process)
        yield Service(url, process)
