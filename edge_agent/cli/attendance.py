"""Site admin CLI: ``edge-agent attendance ...``, reading attendance marks."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import typer
from rich.table import Table

from edge_agent.api import rendering
from edge_agent.cli.common import (
    ConfigOption,
    DataDirOption,
    JsonOption,
    console,
    fail,
    print_json,
    settings_from,
    with_services,
)
from edge_agent.services import Services

app = typer.Typer(help="Attendance marks.", no_args_is_help=True)


@app.command("list")
def attendance_list(
    day: Annotated[
        str, typer.Option(help="YYYY-MM-DD, 'today' (site-local) or 'all'.")
    ] = "today",
    person: Annotated[str | None, typer.Option(help="Id or employee number.")] = None,
    camera: Annotated[str | None, typer.Option(help="Camera id.")] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """List attendance marks in time order."""

    async def query(services: Services) -> list[Any]:
        service = services.attendance
        wanted = _parse_day(day, service.today())
        return await service.list_marks(wanted, person, camera)

    rows = with_services(settings_from(config, data_dir), query)
    if as_json:
        print_json([rendering.attendance_row(r) for r in rows])
        return
    table = Table(
        "Time (UTC)", "Day", "Employee", "Name", "Kind", "Camera", "Similarity"
    )
    for r in rows:
        table.add_row(
            r.mark.marked_at.strftime("%H:%M:%S"),
            r.mark.local_day,
            r.employee_no,
            r.name,
            r.mark.kind.value,
            r.mark.camera_id,
            f"{r.mark.similarity:.3f}",
        )
    console.print(table)


def _parse_day(text: str, today: date) -> date | None:
    if text == "all":
        return None
    if text == "today":
        return today
    try:
        return date.fromisoformat(text)
    except ValueError:
        fail(f"--day {text!r} is not YYYY-MM-DD, 'today' or 'all'", code=2)
