"""Site admin CLI: ``edge-agent users ...``, the people who can be marked."""

from __future__ import annotations

from pathlib import Path
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
from edge_agent.services import Services

app = typer.Typer(help="People who can be marked.", no_args_is_help=True)


@app.command("add")
def users_add(
    employee_no: str,
    name: str,
    department: Annotated[str | None, typer.Option(help="Department.")] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a person."""
    settings = settings_from(config, data_dir)
    person = with_services(
        settings, lambda s: s.users.create(employee_no, name, department, local_actor())
    )
    if as_json:
        print_json(rendering.person(person))
    else:
        console.print(f"Created {person.name} ({person.employee_no}), id {person.id}")


@app.command("list")
def users_list(
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """List people."""
    people = with_services(
        settings_from(config, data_dir), lambda s: s.users.list_people()
    )
    if as_json:
        print_json([rendering.person(p) for p in people])
        return
    table = Table("Employee", "Name", "Department", "Status", "Id", title="People")
    for p in people:
        table.add_row(p.employee_no, p.name, p.department or "", p.status.value, p.id)
    console.print(table)


@app.command("enroll")
def users_enroll(
    person: Annotated[str, typer.Argument(help="Person id or employee number.")],
    images: Annotated[list[Path], typer.Argument(help="Face images.", exists=True)],
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Add face examples of a person (each image is validated first)."""

    async def enroll_all(services: Services) -> None:
        for image in images:
            face = await services.users.enroll(
                person, image.read_bytes(), local_actor()
            )
            console.print(f"Enrolled {image.name} as face {face.id}")

    with_services(settings_from(config, data_dir), enroll_all)
