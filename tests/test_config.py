"""Settings: embedded defaults, TOML file, environment overrides, bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.config import ConfigError, load_settings


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "edge-agent.toml"
    path.write_text(text)
    return path


def test_defaults_work_without_any_file() -> None:
    settings = load_settings()

    assert settings.server.host == "127.0.0.1"
    assert settings.server.port == 8080
    assert settings.storage.database_path.name == "edge-agent.sqlite3"
    assert 0 < settings.attendance.match_threshold < 1


def test_file_values_replace_defaults(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "[server]\nport = 9100\n"
        '[attendance]\nmatch_threshold = 0.7\ntimezone = "Europe/Paris"\n',
    )

    settings = load_settings(path)

    assert settings.server.port == 9100
    assert settings.server.host == "127.0.0.1"
    assert settings.attendance.match_threshold == 0.7
    assert settings.attendance.timezone == "Europe/Paris"


def test_config_file_is_found_through_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "EDGE_AGENT_CONFIG", str(_write(tmp_path, 'site_id = "north"\n'))
    )

    assert load_settings().site_id == "north"


def test_environment_overrides_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path, "[server]\nport = 9100\n")
    monkeypatch.setenv("EDGE_AGENT_SERVER__PORT", "9200")
    monkeypatch.setenv("EDGE_AGENT_RECOGNIZER__API_KEY", "s3cret")

    settings = load_settings(path)

    assert settings.server.port == 9200
    assert settings.recognizer.api_key.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)


def test_explicit_overrides_beat_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("EDGE_AGENT_SERVER__PORT", "9200")

    settings = load_settings(overrides={"server": {"port": 9300}})

    assert settings.server.port == 9300


@pytest.mark.parametrize(
    ("text", "option"),
    [
        pytest.param("[server]\nport = 70000\n", "server.port", id="port-out-of-range"),
        pytest.param(
            "[attendance]\nmatch_threshold = 1.5\n",
            "attendance.match_threshold",
            id="threshold-above-one",
        ),
        pytest.param(
            '[attendance]\ntimezone = "Mars/Olympus"\n',
            "attendance.timezone",
            id="unknown-time-zone",
        ),
        pytest.param(
            '[recognizer]\nurl = "ftp://x"\n', "recognizer.url", id="url-not-http"
        ),
        pytest.param("[server]\nprot = 1\n", "server.prot", id="misspelt-option"),
    ],
)
def test_bad_value_names_the_option(tmp_path: Path, text: str, option: str) -> None:
    with pytest.raises(ConfigError, match=option.replace(".", r"\.")):
        load_settings(_write(tmp_path, text))


def test_bad_environment_value_names_the_option(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EDGE_AGENT_SERVER__PORT", "eighty")

    with pytest.raises(ConfigError, match=r"server\.port"):
        load_settings()


def test_missing_and_malformed_files_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(_write(tmp_path, "[server\n"))
