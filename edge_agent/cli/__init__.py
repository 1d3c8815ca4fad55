"""Site admin CLI (Typer + rich): one module per command group."""

from __future__ import annotations

import typer

from edge_agent import __version__
from edge_agent.cli import (
    accounts,
    attendance,
    audit,
    cameras,
    events,
    serve,
    sync,
    tokens,
    users,
)
from edge_agent.cli import db as db_cli
from edge_agent.cli import doctor as doctor_cli
from edge_agent.cli import init as init_cli
from edge_agent.cli.common import console

app = typer.Typer(help="Edge attendance appliance.", no_args_is_help=True)
app.command()(serve.serve)
app.add_typer(users.app, name="users")
app.add_typer(cameras.app, name="cameras")
app.add_typer(attendance.app, name="attendance")
app.add_typer(accounts.app, name="accounts")
app.add_typer(tokens.app, name="tokens")
app.add_typer(audit.app, name="audit")
app.add_typer(events.app, name="events")
app.add_typer(sync.app, name="sync")
app.add_typer(db_cli.app, name="db")
app.command("init")(init_cli.init)
app.command("doctor")(doctor_cli.doctor)


@app.command()
def version() -> None:
    """Print the version."""
    console.print(__version__)


def main() -> None:
    app()
