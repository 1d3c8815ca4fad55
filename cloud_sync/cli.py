"""Central server CLI: serve, manage sites and their tokens, read the office data.

Commands that read or change data open the configured store directly, so
they work whether or not a server is running on the same database.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from cloud_sync import __version__
from cloud_sync.protocol import Stream
from cloud_sync.server.errors import SyncProblem
from cloud_sync.server.http.app import CentralServer, store_for, utc_now
from cloud_sync.server.http.rendering import site_status_view
from cloud_sync.server.http.request_id import RequestIdFilter
from cloud_sync.server.office import (
    AttendanceFilter,
    OfficeService,
    csv_header,
    csv_line,
)
from cloud_sync.server.settings import (
    CONFIG_ENV_VAR,
    ConfigError,
    Settings,
    load_settings,
)
from cloud_sync.server.sites import SiteService
from cloud_sync.server.store.model import Store
from cloud_sync.server.tokens import new_token, token_hash

app = typer.Typer(help="Central sync server for edge attendance appliances.")
sites_app = typer.Typer(help="Register sites and manage their tokens.")
attendance_app = typer.Typer(help="Read attendance received from every site.")
app.add_typer(sites_app, name="sites")
app.add_typer(attendance_app, name="attendance")

T = TypeVar("T")

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        envvar=CONFIG_ENV_VAR,
        help="TOML configuration file.",
        exists=True,
        dir_okay=False,
    ),
]
_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


@app.callback()
def _root() -> None:
    """Central sync server for edge attendance appliances."""


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


@app.command()
def serve(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="Listen address.")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (0: any).")] = None,
) -> None:
    """Run the central server until SIGINT or SIGTERM."""
    listen = {"host": host, "port": port}
    overrides = {"server": {k: v for k, v in listen.items() if v is not None}}
    settings = _settings(config, overrides if overrides["server"] else None)
    _configure_logging(settings)
    _run(_serve(settings))


@app.command("admin-token")
def admin_token() -> None:
    """Make an office API token; print it and the hash to put in the config."""
    token = new_token()
    typer.echo(f"token: {token}")
    typer.echo(f'[admin]\ntoken_sha256 = "{token_hash(token)}"')


@sites_app.command("add")
def sites_add(
    site_id: str,
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    config: ConfigOption = None,
) -> None:
    """Register a site and print its token. The token is shown only this once."""
    site, token = _with_sites(config, lambda sites: sites.add(site_id, name))
    typer.echo(f"Site {site.site_id} registered. Its token (shown once):")
    typer.echo(token)


@sites_app.command("list")
def sites_list(config: ConfigOption = None) -> None:
    """List the registered sites."""
    sites = _with_sites(config, lambda service: service.list_sites())
    table = Table("site", "name", "registered", "last contact")
    for site in sites:
        contact = site.last_contact_at.isoformat() if site.last_contact_at else "-"
        table.add_row(site.site_id, site.name, site.created_at.isoformat(), contact)
    Console().print(table)


@sites_app.command("rotate-token")
def sites_rotate_token(site_id: str, config: ConfigOption = None) -> None:
    """Give a site a new token; the old one stops working at once."""
    token = _with_sites(config, lambda sites: sites.rotate_token(site_id))
    typer.echo(f"New token of site {site_id} (shown once):")
    typer.echo(token)


@sites_app.command("remove")
def sites_remove(
    site_id: str,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False,
    config: ConfigOption = None,
) -> None:
    """Remove a site with everything it sent."""
    if not yes:
        typer.confirm(f"Remove site {site_id} and all of its records?", abort=True)
    _with_sites(config, lambda sites: sites.remove(site_id))
    typer.echo(f"Site {site_id} removed.")


@sites_app.command("status")
def sites_status(
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Per site: last contact, clock skew, chain state, and each stream's lag."""
    statuses = _with_sites(config, lambda sites: sites.status())
    views = [site_status_view(status) for status in statuses]
    if as_json:
        typer.echo(json.dumps({"sites": views}, indent=2))
        return
    Console().print(_status_table(views))


@attendance_app.command("export")
def attendance_export(
    config: ConfigOption = None,
    site: Annotated[str | None, typer.Option(help="Only this site.")] = None,
    person: Annotated[str | None, typer.Option(help="Only this person.")] = None,
    day_from: Annotated[
        str | None, typer.Option("--from", help="First day, YYYY-MM-DD.")
    ] = None,
    day_to: Annotated[
        str | None, typer.Option("--to", help="Last day, YYYY-MM-DD.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File (default: stdout).")
    ] = None,
) -> None:
    """Write attendance as CSV, oldest first."""
    filters = AttendanceFilter(site, person, day_from, day_to)

    async def export(store: Store) -> None:
        rows = OfficeService(store).iter_attendance(filters)
        with _open_output(output) as sink:
            sink.write(csv_header())
            async for row in rows:
                sink.write(csv_line(row))

    _with_store(config, export)


def _status_table(views: list[dict[str, Any]]) -> Table:
    table = Table("site", "last contact", "skew s", "chain", *_stream_columns())
    for view in views:
        streams = view["streams"]
        table.add_row(
            view["site_id"],
            view["last_contact_at"] or "-",
            "-" if view["clock_skew_s"] is None else f"{view['clock_skew_s']:+.1f}",
            view["chain"]["state"],
            *(
                f"{streams[name]['acked_seq']} (lag {streams[name]['lag']})"
                for name in _stream_columns()
            ),
        )
    return table


def _stream_columns() -> list[str]:
    return [stream.value for stream in Stream]


def _open_output(output: Path | None) -> Any:
    if output is None:
        return nullcontext(sys.stdout)
    return output.open("w", encoding="utf-8", newline="")


def _settings(config: Path | None, overrides: dict[str, Any] | None = None) -> Settings:
    try:
        return load_settings(config, overrides)
    except ConfigError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(2) from exc


def _with_sites(
    config: Path | None, action: Callable[[SiteService], Awaitable[T]]
) -> T:
    return _with_store(config, lambda store: action(SiteService(store, utc_now)))


def _with_store(config: Path | None, action: Callable[[Store], Awaitable[T]]) -> T:
    settings = _settings(config)

    async def run() -> T:
        store = store_for(settings)
        await store.open()
        try:
            return await action(store)
        finally:
            await store.close()

    return _run(run())


def _run(work: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(work)
    except SyncProblem as exc:
        typer.echo(f"Error: {exc.detail}", err=True)
        raise typer.Exit(1) from exc


async def _serve(settings: Settings) -> None:
    server = CentralServer(settings)
    await server.start()
    typer.echo(f"Listening on http://{settings.server.host}:{server.port}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()


def _configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(logging.Formatter(_LOG_FORMAT))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(settings.logging.level)


def main() -> None:
    app()
