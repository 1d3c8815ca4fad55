"""End to end: ``edge-agent serve`` ships its streams to a real ``cloud-sync serve``.

Both are child processes on loopback, with the reference recognizer beside
them. The office is down, then up, then down and up again; the site is
killed with SIGKILL in the middle of a backlog. Every record must reach the
office exactly once, in order, and the site admin CLI must tell the story.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from local_services import (
    BIN,
    Service,
    child_process,
    cloud_sync_add_site,
    cloud_sync_config,
    cloud_sync_server,
    edge_agent,
    free_port,
    reference_recognizer,
)

from cloud_sync.server.tokens import new_token
from edge_agent.clients.storage.database import Database
from edge_agent.clock import to_text
from edge_agent.config import load_settings

SITE = "site-e2e"
API_KEY = "sync-end-to-end-key"
BACKLOG = 3000
# Small pauses, so that a central server coming back is noticed at once.
FAST_SYNC = {
    "EDGE_AGENT_SYNC__BACKOFF_BASE_S": "0.05",
    "EDGE_AGENT_SYNC__BACKOFF_CAP_S": "0.5",
    "EDGE_AGENT_SYNC__IDLE_INTERVAL_S": "0.2",
}
_OUTBOX_ROW = """
INSERT INTO outbox (stream, seq, id, type, occurred_at, payload, monotonic_ns,
                    boot_id)
VALUES ('attendance', ?, ?, 'mark.recorded', ?, ?, ?, 'bench-boot')
"""
_HELD_SEQS = "SELECT seq FROM records WHERE site_id = ? AND stream = ? ORDER BY seq"
_OUTBOX_HEAD = """
INSERT INTO outbox_heads (stream, seq) VALUES ('attendance', ?)
ON CONFLICT (stream) DO UPDATE SET seq = excluded.seq
"""


@dataclass(frozen=True)
class Office:
    """The central server's config, store and tokens; served on demand."""

    folder: Path
    config: Path
    database: Path
    port: int
    admin_token: str
    site_token: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def serve(self) -> contextlib.AbstractContextManager[Service]:
        return cloud_sync_server(self.folder, self.config, self.port)

    def seqs(self, stream: str) -> list[int]:
        """Every seq the office holds of ``stream``, duplicates included."""
        if not self.database.exists():
            return []
        with contextlib.closing(sqlite3.connect(self.database)) as conn:
            return [row[0] for row in conn.execute(_HELD_SEQS, (SITE, stream))]


@pytest.fixture
def office(tmp_path: Path) -> Office:
    """A central server's config on SQLite with the site registered, not running."""
    folder = tmp_path / "office"
    folder.mkdir()
    database = folder / "central.sqlite3"
    admin = new_token()
    port = free_port()
    config = cloud_sync_config(folder, f"sqlite://{database}", admin, port)
    token = cloud_sync_add_site(config, SITE)
    return Office(folder, config, database, port, admin, token)


@pytest.fixture
def recognizer(tmp_path: Path) -> Iterator[Service]:
    """The reference recognizer, as its own process."""
    with reference_recognizer(tmp_path, API_KEY) as service:
        yield service


def _sync_env(office: Office, **extra: str) -> dict[str, str]:
    return {
        "EDGE_AGENT_SITE_ID": SITE,
        "EDGE_AGENT_SYNC__URL": office.url,
        "EDGE_AGENT_SYNC__SITE_TOKEN": office.site_token,
        "EDGE_AGENT_LOGGING__LEVEL": "WARNING",
        **FAST_SYNC,
        **extra,
    }


def _cli(
    args: list[str], data_dir: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """``edge-agent <args>`` on the site's data folder, as a site admin runs it."""
    return subprocess.run(
        [str(BIN / "edge-agent"), *args, "--data-dir", str(data_dir)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _wait_for(what: str, check: Callable[[], bool], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {timeout_s} s")


def _admin(edge: Service) -> httpx.Client:
    """An admin's client of the running daemon."""
    return httpx.Client(base_url=edge.url, headers=edge.admin_headers, timeout=10)


def _streams(api: httpx.Client) -> dict[str, dict[str, Any]]:
    response = api.get("/v1/sync/status")
    assert response.status_code == 200, response.text
    return {s["stream"]: s for s in response.json()["streams"]}


def _caught_up(api: httpx.Client, *names: str) -> Callable[[], bool]:
    def check() -> bool:
        streams = _streams(api)
        return all(streams[n]["lag_records"] == 0 for n in names)

    return check


def _add_marks(api: httpx.Client, person_id: str, count: int, start: int) -> None:
    """Manual marks, an hour apart, alternating in and out."""
    base = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
    for n in range(start, start + count):
        body = {
            "action": "add",
            "comment": f"forgot the badge ({n})",
            "person_id": person_id,
            "kind": "check_in" if n % 2 == 0 else "check_out",
            "at": (base + timedelta(hours=n)).isoformat(),
        }
        response = api.post("/v1/attendance/corrections", json=body)
        assert response.status_code == 201, response.text


def _office_attendance(office: Office) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {office.admin_token}"}
    params = {"site": SITE, "limit": "1000"}
    response = httpx.get(
        f"{office.url}/v1/attendance", params=params, headers=headers, timeout=10
    )
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()["attendance"]
    return rows


def test_records_made_while_the_office_is_down_arrive_once_in_order(
    tmp_path: Path, office: Office, recognizer: Service
) -> None:
    data_dir = tmp_path / "edge"
    env = _sync_env(office)
    with edge_agent(tmp_path, data_dir, recognizer.url, API_KEY, env) as edge:
        cli_env = {**env, "EDGE_AGENT_SERVER__PORT": edge.url.rsplit(":", 1)[1]}
        api = _admin(edge)
        person = api.post("/v1/users", json={"employee_no": "E-1", "name": "Ada"})
        assert person.status_code == 201, person.text
        person_id = person.json()["id"]
        _add_marks(api, person_id, 8, start=0)

        # The office is not up yet: everything waits on the site.
        _wait_for(
            "a failed try",
            lambda: bool(_streams(api)["attendance"]["last_error"]),
        )
        pending = _streams(api)
        assert pending["attendance"]["acked"] == 0
        assert pending["attendance"]["lag_records"] >= 8
        assert "cannot reach" in pending["attendance"]["last_error"]

        with office.serve():
            now = _cli(["sync", "now"], data_dir, cli_env)
            assert now.returncode == 0, now.stderr
            assert "Sync round started" in now.stdout
            _wait_for("catch-up", _caught_up(api, "attendance", "audit"))

            table = _cli(["sync", "status"], data_dir, cli_env)
            assert table.returncode == 0, table.stderr
            for name in ("attendance", "audit", "events"):
                assert name in table.stdout
            marks = [r for r in _office_attendance(office) if "mark_id" in r["payload"]]
            recorded = [r for r in marks if r["type"] == "mark.recorded"]
            assert len(recorded) == 8
            assert {r["person_id"] for r in recorded} == {person_id}

        # Down again for a while: new records pile up, then arrive too.
        _add_marks(api, person_id, 4, start=8)
        _wait_for(
            "the backlog to show",
            lambda: _streams(api)["attendance"]["lag_records"] > 0,
        )
        with office.serve():
            _wait_for("the second catch-up", _caught_up(api, "attendance", "audit"))
            heads = {name: s["head"] for name, s in _streams(api).items()}
            recorded = [
                r for r in _office_attendance(office) if r["type"] == "mark.recorded"
            ]
            assert len(recorded) == 12
        api.close()

    for stream in ("attendance", "audit"):
        assert office.seqs(stream) == list(range(1, heads[stream] + 1)), stream
    offline = _cli(["sync", "status", "--offline", "--json"], data_dir, cli_env)
    assert offline.returncode == 0, offline.stderr
    streams = {s["stream"]: s for s in json.loads(offline.stdout)["streams"]}
    assert streams["attendance"]["acked"] == heads["attendance"]
    assert streams["attendance"]["lag_records"] == 0
    assert streams["audit"]["acked"] == heads["audit"]


def _backlog(data_dir: Path, count: int) -> None:
    """A migrated site database holding ``count`` unsent attendance records,
    written straight into the outbox as the storage layer writes them."""
    settings = load_settings(overrides={"storage": {"data_dir": data_dir}})

    async def migrate() -> None:
        db = Database(settings.storage.database_path)
        await db.open()
        await db.close()

    asyncio.run(migrate())
    at = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
    rows = [
        (
            seq,
            str(uuid.uuid4()),
            to_text(at + timedelta(seconds=seq)),
            json.dumps({"person_id": f"p{seq % 40}", "mark_id": seq}),
            seq,
        )
        for seq in range(1, count + 1)
    ]
    conn = sqlite3.connect(settings.storage.database_path)
    with contextlib.closing(conn), conn:
        conn.executemany(_OUTBOX_ROW, rows)
        conn.execute(_OUTBOX_HEAD, (count,))


def test_a_site_killed_mid_upload_catches_up_without_gaps_or_duplicates(
    tmp_path: Path, office: Office, recognizer: Service
) -> None:
    data_dir = tmp_path / "edge"
    _backlog(data_dir, BACKLOG)
    # Small batches, so the upload lasts long enough to be cut in the middle.
    env = _sync_env(office, EDGE_AGENT_SYNC__BATCH_RECORDS="20")
    daemon_env = {
        **os.environ,
        "EDGE_AGENT_RECOGNIZER__URL": recognizer.url,
        "EDGE_AGENT_RECOGNIZER__API_KEY": API_KEY,
        **env,
    }
    args = [str(BIN / "edge-agent"), "serve", "--host", "127.0.0.1"]
    args += ["--port", str(free_port()), "--data-dir", str(data_dir)]

    with office.serve():
        with child_process(args, tmp_path / "edge-killed.log", daemon_env) as daemon:
            # The uploader starts before the API answers, so watch the office.
            _wait_for(
                "the upload to start",
                lambda: len(office.seqs("attendance")) >= 100,
                timeout_s=30,
            )
            daemon.kill()
            daemon.wait(timeout=10)
        held_at_kill = len(office.seqs("attendance"))
        assert held_at_kill < BACKLOG, "the kill must land mid-upload"

        restart = _sync_env(office)
        with edge_agent(tmp_path, data_dir, recognizer.url, API_KEY, restart) as edge:
            api = _admin(edge)
            _wait_for("catch-up after the kill", _caught_up(api, "attendance"))
            assert _streams(api)["attendance"]["acked"] == BACKLOG
            api.close()

    seqs = office.seqs("attendance")
    assert len(seqs) == BACKLOG
    assert seqs == list(range(1, BACKLOG + 1))
