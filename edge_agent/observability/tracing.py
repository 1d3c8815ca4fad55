"""Observability: W3C Trace Context, ``traceparent`` accepted and passed on.

A request arriving with a valid ``traceparent`` joins the caller's trace; one
without starts a new trace. Either way the appliance's own work gets a span
id of its own, and every outgoing call (the recognizer, the central server)
carries a ``traceparent`` naming that span as its parent, so a trace viewer
can stitch the camera, the appliance and the recognizer together. A frame
keeps its request's trace through the spool, so the recognizer call a worker
makes later still belongs to the camera's request.

Only propagation is done here; the appliance exports no spans itself. The
trace and span ids are written on every log line instead.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from edge_agent.request_context import trace_var

TRACEPARENT_HEADER = "traceparent"

# version-traceid-parentid-flags; a later version may append fields after a
# dash, which a reader of version 00 ignores.
_TRACEPARENT = re.compile(
    r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$"
)
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16


@dataclass(frozen=True, slots=True)
class TraceContext:
    trace_id: str
    span_id: str
    flags: str = "01"

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"

    def child(self) -> TraceContext:
        """A new span in the same trace, with this one as its parent."""
        return TraceContext(self.trace_id, _new_span_id(), self.flags)


def parse_traceparent(header: str | None) -> TraceContext | None:
    """The caller's context, or ``None`` when the header is absent or invalid."""
    if not header:
        return None
    match = _TRACEPARENT.match(header.strip().lower())
    if match is None:
        return None
    version, trace_id, span_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest):
        return None
    if trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    return TraceContext(trace_id, span_id, flags)


def start_span(parent: TraceContext | None) -> TraceContext:
    """This process's span: a child of ``parent``, or the root of a new trace."""
    if parent is not None:
        return parent.child()
    return TraceContext(secrets.token_hex(16), _new_span_id())


def current() -> TraceContext | None:
    return trace_var.get()


def outgoing_traceparent() -> str | None:
    """The header for a call made now: a child span of the current one."""
    context = current()
    return None if context is None else context.child().traceparent


def trace_headers() -> dict[str, str]:
    """The ``traceparent`` header of a call made now, if a trace is current."""
    traceparent = outgoing_traceparent()
    return {} if traceparent is None else {TRACEPARENT_HEADER: traceparent}


@contextmanager
def continued(traceparent: str | None) -> Iterator[TraceContext]:
    """Run the block as a new span of the stored ``traceparent``'s trace."""
    context = start_span(parse_traceparent(traceparent))
    token = trace_var.set(context)
    try:
        yield context
    finally:
        trace_var.reset(token)


def _new_span_id() -> str:
    span = secrets.token_hex(8)
    return span if span != _ZERO_SPAN else _new_span_id()
