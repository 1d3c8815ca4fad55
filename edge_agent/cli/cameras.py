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
    """Register a camera."""
    camera = with_services(
        settings_from(config, data_dir),
        lambda s: s.cameras.register(camera_id, name, direction),
    )
    if as_json:
        print_json(rendering.camera(camera))
    else:
        console.print(f"Registered camera {camera.id} ({camera.direction.value})")


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
