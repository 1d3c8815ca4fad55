"""Site admin CLI: ``edge-agent audit ...``, reading and verifying the audit log."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from cloud_sync.audit_chain import canonical_json
from edge_agent.api.rendering import audit_entry
from edge_agent.cli.common import (
    ConfigOption,
    DataDirOption,
    JsonOption,
    call_services,
    console,
    fail,
    print_json,
    table_time,
)
from edge_agent.services.audit import MAX_PAGE_SIZE, AuditFilter, AuditPage

app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)

_COLUMNS = (
    "Seq",
    "Time (UTC)",
    "Actor",
    "Action",
    "Target",
    "Outcome",
    "Source",
    "Details",
)


@app.command("list")
def audit_list(
    actor: Annotated[
        str | None, typer.Option(help="Only this actor, e.g. account:alice.")
    ] = None,
    action: Annotated[
        str | None, typer.Option(help="Only this action, e.g. auth.login.")
    ] = None,
    limit: Annotated[
        int, typer.Option(min=1, max=MAX_PAGE_SIZE, help="Entries to show.")
    ] = 50,
    after: Annotated[
        int, typer.Option(min=0, help="Start after this seq (the next cursor).")
    ] = 0,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """List audit entries, oldest first."""
    filters = AuditFilter(actor=actor, action=action)
    page = call_services(
        config, data_dir, lambda s: s.audit.list_entries(filters, after, limit)
    )

    if as_json:
        print_json(
            {
                "entries": [audit_entry(e) for e in page.entries],
                "next_cursor": page.next_cursor,
            }
        )
        return
    _print_table(page)


@app.command("verify")
def audit_verify(
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Check the whole hash chain; exit 1 naming the first broken entry."""
    report = call_services(config, data_dir, lambda s: s.audit.verify())

    if not report.ok:
        fail(f"audit chain broken at seq {report.first_bad_seq}: {report.reason}")
    console.print(f"Audit chain intact: {report.checked} entries")


def _print_table(page: AuditPage) -> None:
    # An audit view must not hide text behind an ellipsis: long values fold.
    table = Table()
    for heading in _COLUMNS:
        table.add_column(heading, overflow="fold")
    for e in page.entries:
        table.add_row(
            str(e.seq),
            table_time(e.at),
            e.actor,
            e.action,
            e.target or "",
            e.outcome,
            e.source or "",
            canonical_json(e.details) if e.details else "",
        )
    console.print(table)

    if page.next_cursor is not None:
        console.print(f"More entries: --after {page.next_cursor}")
