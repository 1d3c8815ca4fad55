"""Fixtures: the appliance app served in-process against the reference recognizer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from edge_agent.api.keys import SERVICES
from edge_agent.app import create_app
from edge_agent.config import load_settings
from edge_agent.models import Role, local_admin
from edge_agent.services import Services
from tests import servers

API_KEY = "api-test-key"


@dataclass
class Appliance:
    url: str
    app: web.Application

    @property
    def services(self) -> Services:
        return self.app[SERVICES]

    async def token(self, role: Role, subject: str = "tester") -> str:
        issued = await self.services.auth.issue_token(
            subject, role, 600, local_admin("test")
        )
        return issued.token

    def session(
        self, token: str | None = None, **headers: str
    ) -> aiohttp.ClientSession:
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return aiohttp.ClientSession(base_url=self.url, headers=headers)


@pytest.fixture
async def recognizer_url() -> AsyncIterator[str]:
    """The reference recognizer on a loopback port."""
    async with servers.recognizer(API_KEY) as url:
        yield url


ApplianceFactory = Callable[..., AbstractAsyncContextManager[Appliance]]


@pytest.fixture
def make_appliance(tmp_path: Path, recognizer_url: str) -> ApplianceFactory:
    """Serve an appliance whose settings sections are updated by keyword."""

    @asynccontextmanager
    async def start(**sections: dict[str, Any]) -> AsyncIterator[Appliance]:
        overrides: dict[str, Any] = {
            "storage": {"data_dir": tmp_path / "data"},
            "recognizer": {"url": recognizer_url, "api_key": API_KEY},
            "server": {"max_body_bytes": 200_000},
        }
        for name, values in sections.items():
            overrides[name] = {**overrides.get(name, {}), **values}
        app = create_app(load_settings(overrides=overrides))
        async with servers.serve(app) as url:
            yield Appliance(url, app)

    return start


@pytest.fixture
async def appliance(make_appliance: ApplianceFactory) -> AsyncIterator[Appliance]:
    """The appliance with default settings but small body limits."""
    async with make_appliance() as running:
        yield running


@pytest.fixture
async def api(appliance: Appliance) -> AsyncIterator[aiohttp.ClientSession]:
    """A client session of an admin, bound to the appliance."""
    async with appliance.session(await appliance.token(Role.ADMIN)) as session:
        yield session


async def read_json(response: aiohttp.ClientResponse, status: int) -> Any:
    """The response's JSON body, once its status is checked to be ``status``."""
    assert response.status == status, await response.text()
    return await response.json(content_type=None)


async def decided(session: aiohttp.ClientSession, frame_id: str) -> dict[str, Any]:
    """The frame's status once decided (polled, bounded)."""
    for _ in range(400):
        async with session.get(f"/v1/frames/{frame_id}") as response:
            body: dict[str, Any] = await response.json()
        if body["state"] == "decided":
            return body
        await asyncio.sleep(0.025)
    raise AssertionError(f"frame {frame_id} was not decided in time")
