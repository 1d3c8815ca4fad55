"""Observability: logging setup, JSON lines off a terminal and readable text on one.

The request id of the request being served (see ``gateway.request_id``) and
its W3C trace live in context variables, and a filter stamps them on every
record, so each line a request causes can be found again from the id the
client was given, or from the trace id a tracing system shows.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from edge_agent.request_context import request_id_var, trace_var

# Attributes every LogRecord has; anything else was passed with ``extra=``.
_STANDARD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "request_id",
    "trace_id",
    "span_id",
    "ids",
    "taskName",
}

_TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s [%(ids)s] %(message)s"


class RequestIdFilter(logging.Filter):
    """Stamps the current request id and trace (or ``-``) on each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = request_id_var.get() or "-"
        record.request_id = request_id
        trace = trace_var.get()
        record.trace_id = trace.trace_id if trace else "-"
        record.span_id = trace.span_id if trace else "-"
        # The terminal line shows the trace only when there is one.
        ids = request_id if trace is None else f"{request_id} trace={trace.trace_id}"
        record.ids = ids
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
            "trace_id": getattr(record, "trace_id", None),
            "span_id": getattr(record, "span_id", None),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def setup_logging(
    level: str = "INFO",
    fmt: Literal["auto", "json", "text"] = "auto",
    stream: TextIO | None = None,
) -> None:
    """Route every logger to one handler on ``stream`` (stderr by default)."""
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(_formatter(fmt, stream))

    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)

    # aiohttp's access log would duplicate the gateway's one line per request.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def _formatter(fmt: str, stream: TextIO) -> logging.Formatter:
    use_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    return JsonFormatter() if use_json else logging.Formatter(_TEXT_FORMAT)
