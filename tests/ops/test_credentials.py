"""Secrets from systemd credentials fill only the settings left empty."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.config import load_settings
from edge_agent.credentials import apply_credentials


@pytest.fixture
def credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A credentials folder as systemd makes one, named in the environment."""
    folder = tmp_path / "credentials"
    folder.mkdir()
    (folder / "recognizer-api-key").write_text("key-from-systemd\n")
    (folder / "site-token").write_text("token-from-systemd")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(folder))
    return folder


def test_credentials_fill_empty_secrets(credentials: Path) -> None:
    settings = apply_credentials(load_settings())

    assert settings.recognizer.api_key.get_secret_value() == "key-from-systemd"
    assert settings.sync.site_token.get_secret_value() == "token-from-systemd"


def test_a_configured_secret_wins(
    credentials: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("EDGE_AGENT_RECOGNIZER__API_KEY", "key-from-env")
    token_file = tmp_path / "token"
    settings = load_settings(overrides={"sync": {"site_token_file": token_file}})

    filled = apply_credentials(settings)

    assert filled.recognizer.api_key.get_secret_value() == "key-from-env"
    assert filled.sync.site_token.get_secret_value() == ""


def test_missing_or_empty_credentials_change_nothing(
    credentials: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (credentials / "recognizer-api-key").write_text("\n")
    (credentials / "site-token").unlink()
    settings = load_settings()

    assert apply_credentials(settings) is settings
    monkeypatch.delenv("CREDENTIALS_DIRECTORY")
    assert apply_credentials(settings) is settings
