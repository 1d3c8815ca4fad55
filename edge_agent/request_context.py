"""Per-request context that any layer may read: the request id and client address.

The gateway sets both when a request arrives; logging stamps the id on each
line and the audit log records the address as the act's source. Outside a
request (CLI, scheduler) they are unset.
"""

from __future__ import annotations

import contextvars

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)
client_address_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "client_address", default=None
)
