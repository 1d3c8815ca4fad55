"""Site admin CLI: ``edge-agent tokens ...``, tokens for automation."""

from __future__ import annotations

from typing import Annotated

import typer

from edge_agent.cli.common import (
    ConfigOption,
    DataDirOption,
    JsonOption,
    call_services,
    console,
    fail,
    local_actor,
    print_json,
)
from edge_agent.clock import to_text
from edge_agent.models import Role
from edge_agent.services import Services

app = typer.Typer(help="Signed access tokens.", no_args_is_help=True)


@app.command("issue")
def tokens_issue(
    subject: Annotated[str, typer.Option(help="Who the token speaks for.")],
    role: Annotated[Role, typer.Option(help="admin or user.")],
    ttl: Annotated[int | None, typer.Option(help="Lifetime in seconds.")] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Issue a token; it is printed once and not stored."""
    issued = call_services(
        config,
        data_dir,
        lambda s: s.auth.issue_token(subject, role, ttl, local_actor()),
    )
    if as_json:
        print_json(
            {
                "token": issued.token,
                "token_id": issued.claims.token_id,
                "subject": subject,
                "role": role.value,
                "expires_at": to_text(issued.claims.expires_at),
            }
        )
    else:
        console.print(issued.token, highlight=False, soft_wrap=True)


@app.command("revoke")
def tokens_revoke(
    token_id: Annotated[str | None, typer.Option(help="One token's id.")] = None,
    subject: Annotated[
        str | None, typer.Option(help="Every token of this subject.")
    ] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Revoke one token, or all tokens of a subject issued until now."""
    if not (token_id or subject):
        fail("name --token-id or --subject", code=2)

    async def revoke(services: Services) -> None:
        if token_id:
            await services.auth.revoke_token(token_id, local_actor())
        if subject:
            await services.auth.revoke_subject(subject, local_actor())

    call_services(config, data_dir, revoke)
    console.print("Revoked")
