"""Logging: JSON lines carry the request id and extras; text mode is readable."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from edge_agent.observability.logging import setup_logging
from edge_agent.request_context import request_id_var


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _restore_root_logger() -> Iterator[None]:
    """Put the root logger back as pytest had it."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_off_a_terminal_carry_the_request_id() -> None:
    stream = io.StringIO()
    setup_logging("INFO", "auto", stream)
    token = request_id_var.set("req-1")

    logging.getLogger("edge_agent.test").info("Frame %s seen", "f1", extra={"n": 2})
    request_id_var.reset(token)
    logging.getLogger("edge_agent.test").debug("hidden at INFO")

    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["message"] == "Frame f1 seen"
    assert entry["request_id"] == "req-1"
    assert entry["n"] == 2
    assert entry["level"] == "INFO"


def test_text_on_a_terminal() -> None:
    stream = _Terminal()
    setup_logging("DEBUG", "auto", stream)

    logging.getLogger("edge_agent.test").warning("Camera %s is late", "gate")

    line = stream.getvalue().strip()
    assert "WARNING" in line
    assert "Camera gate is late" in line
    assert "[-]" in line
    assert not line.startswith("{")
