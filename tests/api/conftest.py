"""Fixtures: the appliance app served in-process against the reference recognizer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from edge_agent.app import create_app
from edge_agent.config import load_settings
from tests import servers

API_KEY = "api-test-key"


@pytest.fixture
async def recognizer_url() -> AsyncIterator[str]:
    """The reference recognizer on a loopback port."""
    async with servers.recognizer(API_KEY) as url:
        yield url


@pytest.fixture
async def api(
    tmp_path: Path, recognizer_url: str
) -> AsyncIterator[aiohttp.ClientSession]:
    """A client session bound to the appliance, served on a loopback port."""
    settings = load_settings(
        overrides={
            "storage": {"data_dir": tmp_path / "data"},
            "recognizer": {"url": recognizer_url, "api_key": API_KEY},
            "server": {"max_body_bytes": 200_000},
        }
    )
    async with (
        servers.serve(create_app(settings)) as url,
        aiohttp.ClientSession(base_url=url) as session,
    ):
        yield session
