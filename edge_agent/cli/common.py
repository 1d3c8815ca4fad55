"""Site admin CLI: what every command shares (options, settings, errors, output).

Commands that touch local state open the same services as the daemon, on the
same SQLite file; SQLite's locking lets them run beside a serving daemon.
Errors are one line on stderr and a non-zero exit code, never a trace.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import sys
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console

from edge_agent.app import open_services
from edge_agent.config import ConfigError, Settings, load_settings
from edge_agent.errors import EdgeError
from edge_agent.models import Principal, local_admin
from edge_agent.services import Services

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


def settings_from(
    config: Path | None, data_dir: Path | None, **server: Any
) -> Settings:
    """The settings of ``config`` with the command line's overrides; exit 2 if bad."""
    return load_or_exit(config, overrides_from(data_dir, **server))


def overrides_from(data_dir: Path | None, **server: Any) -> dict[str, Any]:
    """The settings the command line gives, by section, for :func:`load_settings`."""
    overrides: dict[str, Any] = {}
    if data_dir is not None:
        overrides["storage"] = {"data_dir": data_dir}
    if server:
        overrides["server"] = server
    return overrides


def load_or_exit(
    config: Path | None, overrides: dict[str, Any] | None = None
) -> Settings:
    """The settings, or exit 2 naming the bad value."""
    try:
        return load_settings(config, overrides)
    except ConfigError as exc:
        fail(str(exc), code=2)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``message`` as one line on stderr and exit with ``code``."""
    errors.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def with_services(settings: Settings, work: Callable[[Services], Awaitable[T]]) -> T:
    """Run ``work`` against the appliance's services, then close them."""

    async def work_with_services() -> T:
        async with open_services(settings) as services:
            return await work(services)

    return run(work_with_services())


def call_services(
    config: Path | None,
    data_dir: Path | None,
    work: Callable[[Services], Awaitable[T]],
) -> T:
    """Run ``work`` against the services of the settings the options name."""
    return with_services(settings_from(config, data_dir), work)


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine``; a domain error becomes one line and exit 1."""
    try:
        return asyncio.run(coroutine)
    except EdgeError as exc:
        fail(exc.detail)


def local_actor() -> Principal:
    """The site admin at this machine, as the audit log will name them."""
    return local_admin(getpass.getuser())


def read_password(from_stdin: bool, question: str) -> str:
    """One line of stdin, or a hidden prompt asked twice."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    password: str = typer.prompt(question, hide_input=True, confirmation_prompt=True)
    return password


def print_json(body: Any) -> None:
    """Write ``body`` as indented JSON on stdout, past rich's markup."""
    sys.stdout.write(json.dumps(body, indent=2, default=str) + "\n")


def table_time(moment: datetime) -> str:
    """A time in a table, to the second; the column heading names its zone."""
    return moment.strftime("%Y-%m-%d %H:%M:%S")
