"""Shared fixtures for the recognition client tests: a live reference recognizer."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from reference_recognizer import build_app

from tests import servers
from tests.clients.recognition.support import KEY, Reference


@pytest.fixture
async def reference() -> AsyncIterator[Reference]:
    """A fresh reference recognizer that expects the key ``KEY``."""
    app = build_app(KEY)
    async with servers.serve(app) as url:
        yield Reference(url, app)
