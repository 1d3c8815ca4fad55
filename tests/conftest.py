"""Fixtures shared by the whole suite."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from edge_agent.config import Settings, load_settings

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's own EDGE_AGENT_* variables out of every test."""
    import os

    for name in list(os.environ):
        if name.startswith("EDGE_AGENT_"):
            monkeypatch.delenv(name)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Default settings with the data folder inside the test's temporary folder."""
    return load_settings(overrides={"storage": {"data_dir": tmp_path / "data"}})


@pytest.fixture
def mqtt_broker() -> tuple[str, int]:
    """The local Mosquitto broker's address; skips when it does not answer."""
    from tests.external import MQTT_HOST, MQTT_PORT, require_service

    require_service("the MQTT broker", MQTT_HOST, MQTT_PORT)
    return MQTT_HOST, MQTT_PORT


@pytest.fixture
def postgres_dsn() -> str:
    """A DSN of the local PostgreSQL server; skips when it does not answer."""
    from tests.external import (
        POSTGRES_DSN,
        POSTGRES_HOST,
        POSTGRES_PORT,
        require_service,
    )

    require_service("PostgreSQL", POSTGRES_HOST, POSTGRES_PORT)
    return POSTGRES_DSN
