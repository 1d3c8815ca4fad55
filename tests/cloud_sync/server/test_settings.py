"""Settings of the central server: the example file, environment, bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud_sync.server.settings import ConfigError, Settings, load_settings

EXAMPLE = Path(__file__).resolve().parents[3] / "config" / "cloud-sync.example.toml"


def test_example_config_loads_and_equals_the_defaults() -> None:
    assert load_settings(EXAMPLE) == load_settings()


def test_example_config_documents_every_option() -> None:
    text = EXAMPLE.read_text()

    for name, field in Settings.model_fields.items():
        options = getattr(field.annotation, "model_fields", None)
        if options is None:
            assert f"{name} =" in text, name
            continue
        assert f"[{name}]" in text, name
        for option in options:
            assert f"{option} =" in text, f"{name}.{option}"


def test_environment_overrides_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[server]\nport = 9000\n")
    monkeypatch.setenv("CLOUD_SYNC_SERVER__PORT", "9100")

    assert load_settings(path).server.port == 9100


def test_default_database_is_sqlite_in_the_data_folder(tmp_path: Path) -> None:
    settings = load_settings(overrides={"data_dir": tmp_path})

    assert settings.database_url == f"sqlite://{tmp_path / 'cloud-sync.sqlite3'}"


@pytest.mark.parametrize(
    "text",
    [
        '[database]\nurl = "mysql://x"\n',
        '[admin]\ntoken_sha256 = "abc"\n',
        "[server]\nunknown = 1\n",
        "not toml [",
    ],
    ids=["database-kind", "short-hash", "unknown-option", "broken-toml"],
)
def test_bad_values_raise_config_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)

    with pytest.raises(ConfigError):
        load_settings(path)
