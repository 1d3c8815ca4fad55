"""Site admin CLI (Typer + rich): serve the appliance and work on its local state.

Commands that touch local state open the same services as the daemon, on the
same SQLite file; SQLite's locking lets them run beside a serving daemon.
Errors are one line on stderr and a non-zero exit code, never a trace.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Coroutine
from datetime import date
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from aiohttp import web
from rich.console import Console
from rich.table import Table

from edge_agent import __version__
from edge_agent.api import rendering
from edge_agent.app import create_app, open_services
from edge_agent.config import ConfigError, Settings, load_settings
from edge_agent.errors import EdgeError
from edge_agent.models import Direction
from edge_agent.observability.logging import setup_logging
from edge_agent.services import Services

logger = logging.getLogger(__name__)

app = typer.Typer(help="Edge attendance appliance.", no_args_is_help=True)
users_app = typer.Typer(help="People who can be marked.", no_args_is_help=True)
cameras_app = typer.Typer(help="Cameras allowed to send frames.", no_args_is_help=True)
attendance_app = typer.Typer(help="Attendance marks.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(cameras_app, name="cameras")
app.add_typer(attendance_app, name="attendance")

console = Console()
errors = Console(stderr=True)

T = TypeVar("T")

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        envvar="EDGE_AGENT_CONFIG",
        help="TOML settings file.",
        dir_okay=False,
    ),
]
DataDirOption = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Folder of the database (overrides settings)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _settings(config: Path | None, data_dir: Path | None, **server: Any) -> Settings:
    overrides: dict[str, Any] = {}
    if data_dir is not None:
        overrides["storage"] = {"data_dir": data_dir}
    if server:
        overrides["server"] = server
    try:
        return load_settings(config, overrides)
    except ConfigError as exc:
        _fail(str(exc), code=2)


def _fail(message: str, code: int = 1) -> NoReturn:
    errors.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(code)


def _with_services(settings: Settings, work: Callable[[Services], Awaitable[T]]) -> T:
    """Run ``work`` against the appliance's services, then close them."""

    async def run() -> T:
        async with open_services(settings) as services:
            return await work(services)

    return _run(run())


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coroutine)
    except EdgeError as exc:
        _fail(exc.detail)


def _print_json(body: Any) -> None:
    sys.stdout.write(json.dumps(body, indent=2, default=str) + "\n")


@app.command()
def version() -> None:
    """Print the version."""
    console.print(__version__)


@app.command()
def serve(
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
) -> None:
    """Run the appliance's HTTP API until SIGINT or SIGTERM."""
    server = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    settings = _settings(config, data_dir, **server)
    setup_logging(settings.logging.level, settings.logging.format)
    logger.info(
        "Edge agent %s for site %s serving on http://%s:%d, data in %s",
        __version__,
        settings.site_id,
        settings.server.host,
        settings.server.port,
        settings.storage.data_dir,
    )
    web.run_app(
        create_app(settings),
        host=settings.server.host,
        port=settings.server.port,
        shutdown_timeout=settings.server.shutdown_timeout_s,
        access_log=None,
        print=None,
    )
    logger.info("Edge agent stopped")


@users_app.command("add")
def users_add(
    employee_no: str,
    name: str,
    department: Annotated[str | None, typer.Option(help="Department.")] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a person."""
    settings = _settings(config, data_dir)
    person = _with_services(
        settings, lambda s: s.users.create(employee_no, name, department)
    )
    if as_json:
        _print_json(rendering.person(person))
    else:
        console.print(f"Created {person.name} ({person.employee_no}), id {person.id}")


@users_app.command("list")
def users_list(
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """List people."""
    people = _with_services(
        _settings(config, data_dir), lambda s: s.users.list_people()
    )
    if as_json:
        _print_json([rendering.person(p) for p in people])
        return
    table = Table("Employee", "Name", "Department", "Status", "Id", title="People")
    for p in people:
        table.add_row(p.employee_no, p.name, p.department or "", p.status.value, p.id)
    console.print(table)


@users_app.command("enroll")
def users_enroll(
    person: Annotated[str, typer.Argument(help="Person id or employee number.")],
    images: Annotated[list[Path], typer.Argument(help="Face images.", exists=True)],
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Add face examples of a person (each image is validated first)."""

    async def enroll_all(services: Services) -> None:
        for image in images:
            face = await services.users.enroll(person, image.read_bytes())
            console.print(f"Enrolled {image.name} as face {face.id}")

    _with_services(_settings(config, data_dir), enroll_all)


@cameras_app.command("add")
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
    camera = _with_services(
        _settings(config, data_dir),
        lambda s: s.cameras.register(camera_id, name, direction),
    )
    if as_json:
        _print_json(rendering.camera(camera))
    else:
        console.print(f"Registered camera {camera.id} ({camera.direction.value})")


@cameras_app.command("list")
def cameras_list(
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """List cameras."""
    cameras = _with_services(
        _settings(config, data_dir), lambda s: s.cameras.list_cameras()
    )
    if as_json:
        _print_json([rendering.camera(c) for c in cameras])
        return
    table = Table("Id", "Name", "Direction", title="Cameras")
    for c in cameras:
        table.add_row(c.id, c.name, c.direction.value)
    console.print(table)


@attendance_app.command("list")
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

    rows = _with_services(_settings(config, data_dir), query)
    if as_json:
        _print_json([rendering.attendance_row(r) for r in rows])
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
        _fail(f"--day {text!r} is not YYYY-MM-DD, 'today' or 'all'", code=2)


def main() -> None:
    app()
