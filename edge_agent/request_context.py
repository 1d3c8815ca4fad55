"""Per-request context that any layer may read: request id, client address, trace.

The gateway sets them when a request arrives; logging stamps the id and the
trace on each line and the audit log records the address as the act's
source. Outside a request (CLI, scheduler) they are unset.
"""

from __future__ import annotations

import contextvars
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edge_agent.observability.tracing import TraceContext

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)
client_address_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "client_address", default=None
)
trace_var: contextvars.ContextVar[TraceContext | None] = contextvars.ContextVar(
    "trace", default=None
)
