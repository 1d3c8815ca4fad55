"""Central server CLI. Only ``version`` exists so far; serving sites comes next."""

from __future__ import annotations

import typer

from cloud_sync import __version__

app = typer.Typer(help="Central sync server for edge attendance appliances.")


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


@app.callback()
def _root() -> None:
    """Central sync server for edge attendance appliances."""


def main() -> None:
    app()
