"""``edge-agent init`` and ``edge-agent doctor`` against real local services."""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from local_services import (
    Service,
    child_process,
    free_port,
    reference_recognizer,
    wait_ready,
)
from typer.testing import CliRunner

from edge_agent.cli import app

runner = CliRunner()
PASSWORD = "correct horse battery"


def _init(config: Path, data: Path, *extra: str, code: int = 0) -> str:
    args = ["init", "--config", str(config), "--data-dir", str(data)]
    args += ["--admin", "root-admin", "--password-stdin", *extra]
    result = runner.invoke(app, args, input=PASSWORD + "\n")
    assert result.exit_code == code, result.output
    return result.output


@pytest.fixture(scope="module")
def recognizer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """The reference recognizer, shared by this module's tests."""
    with reference_recognizer(tmp_path_factory.mktemp("recognizer"), "key") as up:
        yield up


@pytest.fixture(scope="module")
def central(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An HTTP server standing in for the central server (it sends Date)."""
    folder = tmp_path_factory.mktemp("central")
    port = free_port()
    args = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)]
    with child_process(args, folder / "central.log") as process:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, process)
        yield url


@pytest.fixture
def site(tmp_path: Path) -> tuple[Path, Path]:
    """A site made by ``init``: its config file and data folder."""
    config, data = tmp_path / "etc" / "edge-agent.toml", tmp_path / "data"
    _init(config, data, "--site-id", "gate-7")
    (data / "spool").mkdir()
    return config, data


def test_init_prepares_config_data_keys_and_admin(tmp_path: Path) -> None:
    config, data = tmp_path / "etc" / "edge-agent.toml", tmp_path / "data"

    output = _init(
        config, data, "--site-id", "gate-7", "--recognizer-url", "http://10.1.2.3:8000"
    )

    text = config.read_text()
    assert 'site_id = "gate-7"' in text
    assert 'url = "http://10.1.2.3:8000"' in text
    assert f'data_dir = "{data}"' in text
    assert "# Seconds before a recognizer call is abandoned." in text
    assert data.stat().st_mode & 0o777 == 0o700
    assert (data / "jwt-signing.key").stat().st_mode & 0o777 == 0o600
    with sqlite3.connect(data / "edge-agent.sqlite3") as conn:
        accounts = conn.execute("SELECT username, role FROM accounts").fetchall()
    assert accounts == [("root-admin", "admin")]
    assert "Created admin account root-admin" in output


def test_init_never_overwrites_without_force(site: tuple[Path, Path]) -> None:
    config, data = site
    config.write_text(config.read_text() + "# edited by hand\n")

    refused = _init(config, data, code=1)
    forced = _init(config, data, "--force")

    assert refused == f"error: {config} exists; pass --force to replace it\n"
    assert "Kept the existing admin account root-admin" in forced
    assert "# edited by hand" not in config.read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--password-stdin"], "pass --admin NAME", id="no-admin"),
        pytest.param(["--admin", "ana"], "pass --password-stdin", id="no-password"),
        pytest.param(
            ["--admin", "ana", "--password-stdin", "--recognizer-url", "ftp://x"],
            "recognizer.url",
            id="bad-url",
        ),
    ],
)
def test_init_without_a_terminal_names_what_is_missing(
    tmp_path: Path, args: list[str], message: str
) -> None:
    config = tmp_path / "edge-agent.toml"
    base = ["init", "--config", str(config), "--data-dir", str(tmp_path / "data")]

    result = runner.invoke(app, [*base, *args], input=PASSWORD + "\n")

    assert result.exit_code != 0
    assert message in result.output
    assert result.output.count("\n") == 1
    assert not config.exists()


def _doctor(site: tuple[Path, Path], env: dict[str, str]) -> tuple[int, dict[str, str]]:
    config, _ = site
    result = runner.invoke(app, ["doctor", "--config", str(config), "--json"], env=env)
    report = json.loads(result.stdout)
    assert report["ok"] is (result.exit_code == 0)
    statuses = {check["name"]: check["status"] for check in report["checks"]}
    return result.exit_code, statuses


def _everything_up(
    recognizer: Service, central: str, broker: tuple[str, int]
) -> dict[str, str]:
    host, port = broker
    return {
        "EDGE_AGENT_RECOGNIZER__URL": recognizer.url,
        "EDGE_AGENT_EVENTS__MQTT__ENABLED": "true",
        "EDGE_AGENT_EVENTS__MQTT__HOST": host,
        "EDGE_AGENT_EVENTS__MQTT__PORT": str(port),
        "EDGE_AGENT_SYNC__URL": central,
        "EDGE_AGENT_SYNC__SITE_TOKEN": "site-token-for-tests",
    }


def test_doctor_passes_with_everything_up(
    site: tuple[Path, Path],
    recognizer: Service,
    central: str,
    mqtt_broker: tuple[str, int],
) -> None:
    code, statuses = _doctor(site, _everything_up(recognizer, central, mqtt_broker))

    assert statuses == dict.fromkeys(
        [
            "config",
            "database",
            "disk",
            "spool",
            "recognizer",
            "mqtt broker",
            "central server",
            "clock",
        ],
        "pass",
    )
    assert code == 0


@pytest.mark.parametrize(
    ("variable", "row"),
    [
        pytest.param("EDGE_AGENT_RECOGNIZER__URL", "recognizer", id="recognizer"),
        pytest.param("EDGE_AGENT_EVENTS__MQTT__PORT", "mqtt broker", id="mqtt"),
        pytest.param("EDGE_AGENT_SYNC__URL", "central server", id="central"),
    ],
)
def test_doctor_fails_the_row_of_a_dependency_that_is_down(
    site: tuple[Path, Path],
    recognizer: Service,
    central: str,
    mqtt_broker: tuple[str, int],
    variable: str,
    row: str,
) -> None:
    closed = free_port()
    env = _everything_up(recognizer, central, mqtt_broker)
    env[variable] = (
        str(closed) if row == "mqtt broker" else f"http://127.0.0.1:{closed}"
    )

    code, statuses = _doctor(site, env)

    assert statuses.pop(row) == "fail"
    assert set(statuses.values()) == {"pass"}
    assert code == 1


def test_doctor_fails_a_missing_database_and_a_bad_config(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[server]\nport = 70000\n")

    empty = runner.invoke(app, ["doctor", "--data-dir", str(tmp_path / "none")])
    invalid = runner.invoke(app, ["doctor", "--config", str(bad), "--json"])

    assert empty.exit_code == 1
    assert "no database at" in empty.stdout
    assert json.loads(invalid.stdout)["checks"][0]["status"] == "fail"
    assert "server.port" in invalid.stdout
