"""Controllers: the status page (``GET /``) and its JSON twin (``/v1/status``).

The page is one server-rendered HTML document with inline CSS and no script,
so a wall screen or a phone on the LAN can show it with nothing to fetch. It
reloads itself with a refresh ``<meta>`` (HTML Living Standard, "Refresh"
pragma). Every value is escaped where it enters the markup, and the Content
Security Policy forbids everything but inline style, so even a value that
escaped escaping could neither run a script nor load anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, tzinfo
from html import escape

from aiohttp import web

from edge_agent.api import rendering
from edge_agent.api.keys import services
from edge_agent.gateway.rbac import Permission
from edge_agent.gateway.routing import endpoint
from edge_agent.services.status import (
    CameraLine,
    DayCounts,
    RecognizerLine,
    StatusSnapshot,
    SyncLine,
)
from edge_agent.services.sync import StreamStatus

REFRESH_S = 10

# Fetches nothing, runs nothing, cannot be framed (CSP Level 3; frame-ancestors
# and form-action do not fall back to default-src, so they are named).
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

# Badge colours by state: green is well, amber is degraded, red is down and
# grey is neither (switched off, not watched, not judged yet).
GOOD, WARN, BAD, QUIET = "good", "warn", "bad", "quiet"
_CAMERA_TONES = {
    "online": GOOD,
    "stale": WARN,
    "offline": BAD,
    "disabled": QUIET,
    "idle": QUIET,
}
_BREAKER_TONES = {"closed": GOOD, "half_open": WARN, "open": BAD}
_READY_TONES = {"ready": GOOD, "not ready": BAD}
_SYNC_TONES = {
    "idle": GOOD,
    "sending": GOOD,
    "starting": WARN,
    "backoff": WARN,
    "stopped": BAD,
    "off": QUIET,
}

_STYLE = """
body{margin:0;font:15px/1.4 system-ui,sans-serif;color:#1f2328;background:#f6f8fa}
header{background:#1f3b57;color:#fff;padding:10px 24px}
header h1{margin:0;font-size:20px}header p{margin:2px 0 0;font-size:13px;opacity:.85}
main{padding:8px 24px}
section{background:#fff;border:1px solid #d0d7de;border-radius:6px;
margin:10px 0;padding:8px 16px 12px}
h2{margin:0 0 6px;font-size:16px;border-left:6px solid #1f6feb;padding-left:8px}
table{border-collapse:collapse;width:100%;font-size:14px}
th,td{text-align:left;padding:3px 10px 3px 0;border-bottom:1px solid #eaeef2}
th{color:#59636e;font-weight:600}
.facts th{width:200px}
.counts{display:flex;gap:28px;margin:0}.counts div{min-width:70px}
.counts dt{color:#59636e;font-size:13px}
.counts dd{margin:0;font-size:24px;font-weight:600}
.badge{display:inline-block;min-width:64px;text-align:center;padding:1px 8px;
border-radius:10px;color:#fff;font-size:13px;font-weight:600}
.good{background:#1a7f37}.warn{background:#bf8700}.bad{background:#cf222e}
.quiet{background:#6e7781}
.note{color:#59636e;margin:4px 0}
""".strip()


def routes(open_to_all: bool) -> web.RouteTableDef:
    """The page and its JSON; ``open_to_all`` serves the page without
    credentials, else it needs the metrics permission, as ``/metrics`` does."""
    table = web.RouteTableDef()
    permission = None if open_to_all else Permission.METRICS_READ
    page = endpoint(
        "Status page (HTML): counts and device states", permission=permission
    )
    table.get("/")(page(_status_page))
    snapshot = endpoint(
        "The status page's snapshot as JSON", permission=Permission.ATTENDANCE_READ
    )
    table.get("/v1/status")(snapshot(_status_json))
    return table


async def _status_page(request: web.Request) -> web.Response:
    snapshot = await services(request).status.snapshot()
    return web.Response(
        text=render_page(snapshot),
        content_type="text/html",
        charset="utf-8",
        headers=_HEADERS,
    )


async def _status_json(request: web.Request) -> web.Response:
    snapshot = await services(request).status.snapshot()
    response = rendering.json_response(rendering.status_snapshot(snapshot))
    response.headers["Cache-Control"] = "no-store"
    return response


def render_page(snapshot: StatusSnapshot) -> str:
    """The whole document; every value passes :func:`html.escape`."""
    tz = snapshot.timezone
    sections = (
        _today(snapshot.today),
        _cameras(snapshot.cameras, tz),
        _recognizer(snapshot.recognizer),
        _sync(snapshot.sync, tz),
    )
    site = escape(snapshot.site_id)
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="{REFRESH_S}">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>Status of {site}</title><style>{_STYLE}</style></head>"
        f"<body><header><h1>Site {site}</h1><p>As of "
        f"{escape(_time(snapshot.at, tz))} ({escape(tz.key)}), refreshed every "
        f"{REFRESH_S} s</p></header><main>{''.join(sections)}</main></body></html>\n"
    )


def _section(key: str, title: str, body: str) -> str:
    return f'<section id="{key}"><h2>{escape(title)}</h2>{body}</section>'


def _today(counts: DayCounts) -> str:
    figures = {
        "Present": counts.present,
        "Late": counts.late,
        "Half day": counts.half_day,
        "Absent": counts.absent,
        "Off": counts.off,
        "Marks": counts.marks,
    }
    cells = "".join(
        f'<div id="count-{escape(name.lower().replace(" ", "-"))}">'
        f"<dt>{escape(name)}</dt><dd>{value}</dd></div>"
        for name, value in figures.items()
    )
    day = f'<p class="note">{escape(counts.day.isoformat())}, site time</p>'
    return _section("today", "Today", f'{day}<dl class="counts">{cells}</dl>')


def _cameras(cameras: Iterable[CameraLine], tz: tzinfo) -> str:
    rows = [
        (
            c.id,
            c.name,
            c.location or "",
            _badge(c.state or "not judged", _CAMERA_TONES),
            _time(c.last_frame_at, tz),
            "" if c.frames_last_minute is None else str(c.frames_last_minute),
            c.grade or "",
        )
        for c in cameras
    ]
    if not rows:
        return _section("cameras", "Cameras", _note("No camera is registered."))
    head = ("Id", "Name", "Location", "State", "Last frame", "Frames/min", "Quality")
    return _section("cameras", "Cameras", _table(head, rows, markup_column=3))


def _recognizer(line: RecognizerLine) -> str:
    rows = [
        ("Circuit breaker", _badge(line.breaker, _BREAKER_TONES)),
        ("Ready", _badge("ready" if line.ready else "not ready", _READY_TONES)),
        ("Why", escape("; ".join(line.reasons) or "nothing is wrong")),
        ("Database", escape(line.database)),
        ("Spool backlog", escape(_backlog(line.spool_frames, line.spool_bytes))),
    ]
    cells = "".join(f"<tr><th>{escape(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return _section("recognizer", "Recognizer", f'<table class="facts">{cells}</table>')


def _sync(line: SyncLine, tz: tzinfo) -> str:
    note = ""
    if not line.enabled:
        off = _badge("off", _SYNC_TONES)
        note = _note_markup(f"{off} No central server is configured.")
    rows = [_stream_row(s, tz) for s in line.streams]
    head = ("Stream", "State", "Acknowledged / head", "Lag", "Last error")
    return _section("sync", "Sync", note + _table(head, rows, markup_column=1))


def _stream_row(status: StreamStatus, tz: tzinfo) -> tuple[str, ...]:
    lag = f"{status.lag_records} record{'' if status.lag_records == 1 else 's'}"
    if status.lag_s is not None:
        lag += f", {_duration(status.lag_s)}"
    return (
        status.stream,
        _badge(status.state, _SYNC_TONES),
        f"{status.acked} / {status.head}",
        lag,
        status.last_error or "",
    )


def _table(
    head: tuple[str, ...], rows: Iterable[tuple[str, ...]], *, markup_column: int
) -> str:
    """A table of text cells, escaped, but for one column of ready markup."""
    header = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td>{cell if i == markup_column else escape(cell)}</td>"
            for i, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{header}</tr>{body}</table>"


def _badge(state: str, tones: Mapping[str, str]) -> str:
    # The class comes from the fixed table, never from the value itself.
    tone = tones.get(state, QUIET)
    return f'<span class="badge {tone}">{escape(state)}</span>'


def _note(text: str) -> str:
    return _note_markup(escape(text))


def _note_markup(markup: str) -> str:
    return f'<p class="note">{markup}</p>'


def _time(moment: datetime | None, tz: tzinfo) -> str:
    if moment is None:
        return "never"
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")


def _duration(seconds: float) -> str:
    whole = int(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


def _backlog(frames: int, size: int) -> str:
    return f"{frames} frames, {_size(size)}"


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"
