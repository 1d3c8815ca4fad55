"""Site admin CLI: ``edge-agent cameras ...``, the cameras allowed to send frames."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from edge_agent.api import rendering
from edge_agent.cli.common import (
    ConfigOption,
    DataDirOption,
    JsonOption,
    console,
    local_actor,
    print_json,
    settings_from,
    with_services,
)
from edge_agent.models import Direction

app = typer.Typer(help="Cameras allowed to send frames.", no_args_is_help=True)


@app.command("add")
def cameras_add(
    camera_id: str,
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    direction: Annotated[Direction, typer.Option(help="Which way it watches.")] = (
        Direction.BOTH
    ),
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Register a camera and print its API key (shown only this once)."""
    registered = with_services(
        settings_from(config, data_dir),
        lambda s: s.cameras.register(camera_id, name, direction, local_actor()),
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
    cameras = with_services(
        settings_from(config, data_dir), lambda s: s.cameras.list_cameras()
    )
    if as_json:
        print_json([rendering.camera(c) for c in cameras])
        return
    table = Table("Id", "Name", "Direction", title="Cameras")
    for c in cameras:
        table.add_row(c.id, c.name, c.direction.value)
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
    key = with_services(
        settings_from(config, data_dir),
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
    count = with_services(
        settings_from(config, data_dir),
        lambda s: s.cameras.revoke_keys(camera_id, local_actor()),
    )
    console.print(f"Revoked {count} key(s) of camera {camera_id}")
