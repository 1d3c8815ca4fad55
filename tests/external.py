"""Services this machine runs beside the appliance: the MQTT broker, PostgreSQL.

A test that needs one asks for its fixture. When the service does not answer,
the test is skipped with the reason, unless ``EDGE_TEST_REQUIRE_SERVICES=1``
(set by CI), where a missing service fails the test instead.
"""

from __future__ import annotations

import os
import socket

import pytest

MQTT_HOST, MQTT_PORT = "127.0.0.1", 1883
POSTGRES_HOST, POSTGRES_PORT = "127.0.0.1", 5432
POSTGRES_DSN = os.environ.get(
    "EDGE_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def services_required() -> bool:
    return os.environ.get("EDGE_TEST_REQUIRE_SERVICES") == "1"


def require_service(name: str, host: str, port: int) -> None:
    """Skip (or, when services are required, fail) unless host:port accepts."""
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return
    except OSError as exc:
        reason = f"{name} is not reachable on {host}:{port} ({exc})"
    if services_required():
        pytest.fail(f"{reason}, and EDGE_TEST_REQUIRE_SERVICES=1 requires it")
    pytest.skip(reason)
