"""Site admin CLI: ``edge-agent cameras ...``, the camera fleet and its health.

The status commands read what the daemon's health monitor last stored in the
database, so they work beside a running daemon and show its view.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.table import Table

from edge_agent.api import rendering
from edge_agent.app import open_services
from edge_agent.cli.common import (
    ConfigOption,
    DataDirOption,
    JsonOption,
    call_services,
    console,
    fail,
    local_actor,
    print_json,
    run,
    settings_from,
    with_services,
)
from edge_agent.config import Settings
from edge_agent.errors import InvalidInput
from edge_agent.models import Direction
from edge_agent.services.cameras import CameraPatch, CameraStatus, parse_schedule

app = typer.Typer(help="Cameras allowed to send frames.", no_args_is_help=True)


class Clearable(enum.StrEnum):
    LOCATION = "location"
    INTERVAL = "interval"
    THRESHOLD = "threshold"
    PROBE_URL = "probe-url"
    SCHEDULE = "schedule"


# The patch field each --clear names, and the value that clears it.
_CLEARED: dict[Clearable, tuple[str, Any]] = {
    Clearable.LOCATION: ("location", None),
    Clearable.INTERVAL: ("expected_interval_s", None),
    Clearable.THRESHOLD: ("match_threshold", None),
    Clearable.PROBE_URL: ("probe_url", None),
    Clearable.SCHEDULE: ("schedule", ()),
}

LocationOption = Annotated[str | None, typer.Option(help="Where it hangs.")]
IntervalOption = Annotated[
    float | None,
    typer.Option(
        "--interval", help="Seconds between frames it keeps to (0: not watched)."
    ),
]
ThresholdOption = Annotated[
    float | None,
    typer.Option("--threshold", help="Match threshold on this camera (0-1)."),
]
ProbeOption = Annotated[
    str | None, typer.Option("--probe-url", help="HTTP snapshot or rtsp:// URL.")
]
ScheduleOption = Annotated[
    str | None,
    typer.Option(
        help='JSON list of {"days": [0-6, Mon=0], "start": "HH:MM", "end": "HH:MM"}.'
    ),
]


def _patch(
    *,
    name: str | None = None,
    direction: Direction | None = None,
    location: str | None = None,
    interval: float | None = None,
    threshold: float | None = None,
    probe_url: str | None = None,
    schedule: str | None = None,
    clear: list[Clearable] | None = None,
) -> CameraPatch:
    given: dict[str, Any] = {
        "name": name,
        "direction": direction,
        "location": location,
        "expected_interval_s": interval,
        "match_threshold": threshold,
        "probe_url": probe_url,
    }
    values = {key: value for key, value in given.items() if value is not None}
    if schedule is not None:
        values["schedule"] = _schedule(schedule)
    for cleared in clear or []:
        field, empty = _CLEARED[cleared]
        values[field] = empty
    return CameraPatch(**values)


def _schedule(text: str) -> Any:
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        fail(f"--schedule is not JSON: {exc}", code=2)
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        fail("--schedule is a JSON list of objects", code=2)
    try:
        return parse_schedule(items)
    except InvalidInput as exc:
        fail(exc.detail, code=2)


@app.command("add")
def cameras_add(
    camera_id: str,
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    direction: Annotated[Direction, typer.Option(help="Which way it watches.")] = (
        Direction.BOTH
    ),
    location: LocationOption = None,
    interval: IntervalOption = None,
    threshold: ThresholdOption = None,
    probe_url: ProbeOption = None,
    schedule: ScheduleOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Register a camera (or bring a removed one back) and print its API key
    (shown only this once)."""
    patch = _patch(
        location=location,
        interval=interval,
        threshold=threshold,
        probe_url=probe_url,
        schedule=schedule,
    )
    registered = call_services(
        config,
        data_dir,
        lambda s: s.cameras.register(camera_id, name, direction, local_actor(), patch),
    )
    camera = registered.camera
    if as_json:
        print_json({**rendering.camera(camera), "api_key": registered.api_key})
    else:
        console.print(f"Registered camera {camera.id} ({camera.direction.value})")
        console.print(f"API key (shown once): {registered.api_key}", highlight=False)


@app.command("list")
def cameras_list(
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """List cameras."""
    cameras = call_services(config, data_dir, lambda s: s.cameras.list_cameras())
    if as_json:
        print_json([rendering.camera(c) for c in cameras])
        return
    table = Table("Id", "Name", "Direction", "Location", "Enabled", title="Cameras")
    for c in cameras:
        table.add_row(
            c.id, c.name, c.direction.value, c.location or "", _yes(c.enabled)
        )
    console.print(table)


@app.command("rotate-key")
def cameras_rotate_key(
    camera_id: str,
    grace: Annotated[
        int | None, typer.Option(help="Seconds the old key keeps working.")
    ] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Give a camera a new API key; the old one works for the grace period."""
    key = call_services(
        config,
        data_dir,
        lambda s: s.cameras.rotate_key(camera_id, grace, local_actor()),
    )
    if as_json:
        print_json({"camera_id": camera_id, "api_key": key})
    else:
        console.print(
            f"New API key for {camera_id} (shown once): {key}", highlight=False
        )


@app.command("revoke-keys")
def cameras_revoke_keys(
    camera_id: str, config: ConfigOption = None, data_dir: DataDirOption = None
) -> None:
    """Revoke every API key of a camera at once."""
    count = call_services(
        config, data_dir, lambda s: s.cameras.revoke_keys(camera_id, local_actor())
    )
    console.print(f"Revoked {count} key(s) of camera {camera_id}")


@app.command("update")
def cameras_update(
    camera_id: str,
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    direction: Annotated[
        Direction | None, typer.Option(help="Which way it watches.")
    ] = None,
    location: LocationOption = None,
    interval: IntervalOption = None,
    threshold: ThresholdOption = None,
    probe_url: ProbeOption = None,
    schedule: ScheduleOption = None,
    clear: Annotated[
        list[Clearable] | None,
        typer.Option(help="Clear a setting (repeatable)."),
    ] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change a camera's settings; settings not given stay as they are."""
    patch = _patch(
        name=name,
        direction=direction,
        location=location,
        interval=interval,
        threshold=threshold,
        probe_url=probe_url,
        schedule=schedule,
        clear=clear,
    )
    camera = call_services(
        config, data_dir, lambda s: s.cameras.update(camera_id, patch, local_actor())
    )
    if as_json:
        print_json(rendering.camera(camera))
    else:
        console.print(f"Updated camera {camera.id}")


@app.command("enable")
def cameras_enable(
    camera_id: str, config: ConfigOption = None, data_dir: DataDirOption = None
) -> None:
    """Accept the camera's frames again."""
    call_services(
        config, data_dir, lambda s: s.cameras.enable(camera_id, local_actor())
    )
    console.print(f"Enabled camera {camera_id}")


@app.command("disable")
def cameras_disable(
    camera_id: str, config: ConfigOption = None, data_dir: DataDirOption = None
) -> None:
    """Refuse the camera's frames until it is enabled."""
    call_services(
        config, data_dir, lambda s: s.cameras.disable(camera_id, local_actor())
    )
    console.print(f"Disabled camera {camera_id}")


@app.command("remove")
def cameras_remove(
    camera_id: str, config: ConfigOption = None, data_dir: DataDirOption = None
) -> None:
    """Remove a camera: hidden, keys revoked, frames refused; history stays."""
    call_services(
        config, data_dir, lambda s: s.cameras.remove(camera_id, local_actor())
    )
    console.print(f"Removed camera {camera_id}")


@app.command("status")
def cameras_status(
    watch: Annotated[
        bool, typer.Option("--watch", help="Refresh until Ctrl-C.")
    ] = False,
    refresh: Annotated[
        float, typer.Option(help="Seconds between refreshes.", min=0.1)
    ] = 2.0,
    times: Annotated[int | None, typer.Option(hidden=True, min=1)] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every camera's health, as the daemon's monitor last stored it."""
    settings = settings_from(config, data_dir)
    if watch and not as_json:
        # Ctrl-C is how a watch ends: a normal exit, not an error.
        with contextlib.suppress(KeyboardInterrupt):
            run(_watch(settings, refresh, times))
        return
    statuses = with_services(settings, lambda s: s.cameras.statuses())
    if as_json:
        print_json([rendering.camera_status(s) for s in statuses])
    else:
        console.print(_status_table(statuses))


async def _watch(settings: Settings, refresh: float, times: int | None) -> None:
    """Redraw the table every ``refresh`` seconds; ``times`` bounds the redraws
    (for scripts and tests; the default is until interrupted)."""
    async with open_services(settings) as services:
        with Live(console=console, auto_refresh=False) as live:
            drawn = 0
            while times is None or drawn < times:
                if drawn:
                    await asyncio.sleep(refresh)
                statuses = await services.cameras.statuses()
                live.update(_status_table(statuses), refresh=True)
                drawn += 1


def _status_table(statuses: list[CameraStatus]) -> Table:
    table = Table(
        "Camera",
        "Location",
        "State",
        "Since",
        "Last frame",
        "Frames/min",
        "Refused/h",
        "Grade",
        "Last error",
        title="Camera health",
    )
    for status in statuses:
        view = rendering.camera_status(status)
        activity = view["activity"]
        table.add_row(
            view["camera_id"],
            view["location"] or "",
            _state(view),
            _short(view["since"]),
            _short(view["last_frame_at"]),
            str(activity.get("accepted_last_minute", "")),
            str(activity.get("refused_last_hour", "")),
            view["grade"] or "",
            (view["last_error"] or "")[:60],
        )
    return table


_STATE_STYLE = {
    "online": "green",
    "stale": "yellow",
    "offline": "red",
    "disabled": "dim",
    "idle": "blue",
}


def _state(view: dict[str, Any]) -> str:
    state = view["state"]
    if state is None:
        return "[dim]unknown[/dim]" if view["enabled"] else "[dim]disabled[/dim]"
    style = _STATE_STYLE.get(state, "white")
    return f"[{style}]{state}[/{style}]"


def _short(moment: str | None) -> str:
    """An RFC 3339 time to the second, without the date's noise of a table."""
    return "" if moment is None else moment[:19].replace("T", " ")


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"
