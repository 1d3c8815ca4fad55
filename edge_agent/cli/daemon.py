"""Site admin CLI: calls to the running daemon, for what only it knows.

A worker's live state (backing off, stopped, idle) and a nudge to start a
round now exist only in the daemon's memory, so those commands go over its
HTTP API, on the host and port of the settings, with a one-minute admin
token the CLI mints with the site's signing key (and which the audit log
records like any other).
"""

from __future__ import annotations

import getpass
from typing import Any

import httpx

from edge_agent.cli.common import local_actor, with_services
from edge_agent.config import Settings
from edge_agent.errors import EdgeError, Unavailable
from edge_agent.models import Role

_TOKEN_TTL_S = 60
_TIMEOUT_S = 10.0


class DaemonUnreachable(Unavailable):
    slug = "daemon-unreachable"
    title = "The daemon does not answer"


def call_daemon(
    settings: Settings, method: str, path: str, body: dict[str, Any] | None = None
) -> Any:
    """The JSON answer of the daemon to one request; one clear error otherwise."""
    issued = with_services(
        settings,
        lambda s: s.auth.issue_token(
            f"cli:{getpass.getuser()}", Role.ADMIN, _TOKEN_TTL_S, local_actor()
        ),
    )
    host = settings.server.host
    base = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}"
    url = f"{base}:{settings.server.port}{path}"
    headers = {"Authorization": f"Bearer {issued.token}"}
    try:
        response = httpx.request(
            method, url, json=body, headers=headers, timeout=_TIMEOUT_S
        )
    except httpx.TransportError as exc:
        raise DaemonUnreachable(f"no daemon answers at {url}: {exc}") from exc
    answer = response.json() if response.content else {}
    if response.status_code >= 400:
        detail = answer.get("detail") if isinstance(answer, dict) else None
        raise EdgeError(f"the daemon answered {response.status_code}: {detail}")
    return answer
