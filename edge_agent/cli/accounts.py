"""Site admin CLI: ``edge-agent accounts ...``, people who sign in to the API."""

from __future__ import annotations

from typing import Annotated

import typer

from edge_agent.cli.common import (
    ConfigOption,
    DataDirOption,
    call_services,
    console,
    local_actor,
    read_password,
)
from edge_agent.models import Role

app = typer.Typer(help="Accounts that sign in with a password.", no_args_is_help=True)


@app.command("add")
def accounts_add(
    username: str,
    role: Annotated[Role, typer.Option(help="admin or user.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Create an account (the password is asked for, never taken as an argument)."""
    password = read_password(password_stdin, "Password")
    call_services(
        config,
        data_dir,
        lambda s: s.auth.create_account(username, password, role, local_actor()),
    )
    console.print(f"Created account {username} ({role.value})")


@app.command("disable")
def accounts_disable(
    username: str, config: ConfigOption = None, data_dir: DataDirOption = None
) -> None:
    """Disable an account and revoke its tokens."""
    call_services(
        config,
        data_dir,
        lambda s: s.auth.set_account_disabled(username, True, local_actor()),
    )
    console.print(f"Disabled account {username}")
