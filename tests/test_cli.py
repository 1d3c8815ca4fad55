"""Site admin CLI: commands on local state, JSON output, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from local_services import reference_recognizer
from synthetic_faces import encode_jpeg, face_image
from typer.testing import CliRunner

from edge_agent.cli import app

runner = CliRunner()
ACCOUNT_ADD = ["accounts", "add", "ana", "--password-stdin"]


def _invoke(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> str:
    result = runner.invoke(app, [*args, "--data-dir", str(data_dir)], env=env)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_people_and_cameras_round_trip(tmp_path: Path) -> None:
    data = tmp_path / "data"

    _invoke(data, "users", "add", "E7", "Grace Hopper", "--department", "R&D")
    added = json.loads(
        _invoke(data, "cameras", "add", "door", "--direction", "entry", "--json")
    )
    people = json.loads(_invoke(data, "users", "list", "--json"))
    cameras = json.loads(_invoke(data, "cameras", "list", "--json"))
    table = _invoke(data, "users", "list")

    assert added["direction"] == "entry"
    assert [(p["employee_no"], p["department"]) for p in people] == [("E7", "R&D")]
    assert [c["id"] for c in cameras] == ["door"]
    assert "Grace Hopper" in table
    assert json.loads(_invoke(data, "attendance", "list", "--json")) == []


def test_enroll_sends_the_image_to_the_recognizer(tmp_path: Path) -> None:
    data = tmp_path / "data"
    image = tmp_path / "alice.jpg"
    image.write_bytes(encode_jpeg(face_image("alice")))
    _invoke(data, "users", "add", "E1", "Alice")

    with reference_recognizer(tmp_path, "cli-key") as recognizer:
        env = {
            "EDGE_AGENT_RECOGNIZER__URL": recognizer.url,
            "EDGE_AGENT_RECOGNIZER__API_KEY": "cli-key",
        }
        output = _invoke(data, "users", "enroll", "E1", str(image), env=env)

    assert "Enrolled alice.jpg" in output


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["users", "add", "E1", "Again"], id="conflict"),
        pytest.param(["attendance", "list", "--day", "someday"], id="bad-day"),
    ],
)
def test_errors_are_one_line_and_non_zero(tmp_path: Path, args: list[str]) -> None:
    data = tmp_path / "data"
    _invoke(data, "users", "add", "E1", "Alice")

    result = runner.invoke(app, [*args, "--data-dir", str(data)])

    assert result.exit_code != 0
    assert result.output.count("\n") == 1
    assert "error:" in result.output
    assert "Traceback" not in result.output


def test_bad_setting_stops_serve_naming_the_option(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[server]\nport = -1\n")

    result = runner.invoke(app, ["serve", "--config", str(config)])

    assert result.exit_code == 2
    assert "server.port" in result.output


def test_keys_tokens_and_accounts_are_made_and_audited(tmp_path: Path) -> None:
    data = tmp_path / "data"

    camera = json.loads(_invoke(data, "cameras", "add", "door", "--json"))
    rotated = json.loads(_invoke(data, "cameras", "rotate-key", "door", "--json"))
    token = json.loads(
        _invoke(data, "tokens", "issue", "--subject", "ci", "--role", "admin", "--json")
    )
    result = runner.invoke(
        app,
        [
            "accounts",
            "add",
            "ana",
            "--role",
            "user",
            "--password-stdin",
            "--data-dir",
            str(data),
        ],
        input="a long enough password\n",
    )
    _invoke(data, "tokens", "revoke", "--subject", "ci")
    verified = _invoke(data, "audit", "verify")

    assert camera["api_key"].startswith("eak_")
    assert rotated["api_key"] != camera["api_key"]
    assert token["token"].count(".") == 2
    assert result.exit_code == 0, result.output
    assert "intact" in verified


def test_short_passwords_are_refused(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "accounts",
            "add",
            "ana",
            "--role",
            "admin",
            "--password-stdin",
            "--data-dir",
            str(tmp_path),
        ],
        input="short\n",
    )

    assert result.exit_code == 1
    assert "at least" in result.output
