"""Site admin CLI: ``edge-agent events ...``, the event outbox and its sinks.

The commands read and change the database directly; a running daemon picks
up a redrive at its next poll.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from edge_agent.api import rendering
from edge_agent.cli.common import (
    ConfigOption,
    DataDirOption,
    JsonOption,
    call_services,
    console,
    local_actor,
    print_json,
    table_time,
)
from edge_agent.clients.storage.deliveries import DeadLetter, DeadLetterState
from edge_agent.services.events import SINK_PREFIX, EventPage, SinkStatus
from edge_agent.services.paging import MAX_PAGE_SIZE

app = typer.Typer(help="Events and their delivery to sinks.", no_args_is_help=True)

# A payload longer than this is cut in the table (the JSON output has it all).
_PAYLOAD_CHARS = 80

LimitOption = Annotated[
    int, typer.Option(min=1, max=MAX_PAGE_SIZE, help="Rows to show.")
]


@app.command("list")
def events_list(
    after: Annotated[int, typer.Option(min=0, help="Start after this seq.")] = 0,
    event_type: Annotated[
        str | None, typer.Option("--type", help="Only this type, e.g. face.unknown.")
    ] = None,
    limit: LimitOption = 50,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """List events of the outbox, oldest first."""
    page = call_services(
        config, data_dir, lambda s: s.events.list_events(after, event_type, limit)
    )
    if as_json:
        events = [rendering.outbox_event(e) for e in page.events]
        print_json({"events": events, "next_after": page.next_after, "head": page.head})
        return
    _print_events(page)


@app.command("sinks")
def events_sinks(
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show how far each sink has got, and what holds it back."""
    sinks = call_services(config, data_dir, lambda s: s.events.sinks())
    if as_json:
        print_json([rendering.sink_status(s) for s in sinks])
        return
    _print_sinks(sinks)


@app.command("dead-letters")
def events_dead_letters(
    sink: Annotated[
        str | None, typer.Option(help="Only this sink, e.g. webhook:vms or mqtt.")
    ] = None,
    state: Annotated[
        DeadLetterState | None, typer.Option(help="Only this state.")
    ] = None,
    limit: LimitOption = 100,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the events sinks gave up on."""
    letters = call_services(
        config, data_dir, lambda s: s.events.dead_letters(sink, state, 0, limit)
    )
    if as_json:
        print_json([rendering.dead_letter(d) for d in letters])
        return
    _print_dead_letters(letters)


@app.command("redrive")
def events_redrive(
    sink: Annotated[str, typer.Argument(help="The sink, e.g. webhook:vms or mqtt.")],
    seqs: Annotated[
        list[int] | None,
        typer.Option("--seq", help="Only this event (repeatable); default: all."),
    ] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Queue a sink's dead letters for another delivery."""
    result = call_services(
        config, data_dir, lambda s: s.events.redrive(sink, seqs or None, local_actor())
    )
    if as_json:
        print_json(rendering.redrive(result))
        return
    console.print(f"Queued {len(result.queued)} dead letter(s) of {sink} again")


def _print_events(page: EventPage) -> None:
    table = Table("Seq", "Type", "Occurred (UTC)", "Payload", title="Events")
    for e in page.events:
        payload = json.dumps(e.payload, sort_keys=True)
        if len(payload) > _PAYLOAD_CHARS:
            payload = payload[: _PAYLOAD_CHARS - 3] + "..."
        table.add_row(str(e.seq), e.type, table_time(e.occurred_at), payload)
    console.print(table)
    if page.next_after is not None:
        console.print(f"More events: --after {page.next_after}")


def _print_sinks(sinks: list[SinkStatus]) -> None:
    table = Table(
        "Sink", "Cursor", "Head", "Lag", "Attempts", "Dead", "Last error", title="Sinks"
    )
    for s in sinks:
        name = s.name if s.configured else f"{s.name} (not configured)"
        table.add_row(
            name,
            str(s.position),
            str(s.head),
            str(s.lag),
            str(s.attempts),
            str(s.dead_letters),
            s.last_error or "",
        )
    console.print(table)


def _print_dead_letters(letters: list[DeadLetter]) -> None:
    table = Table(
        "Sink",
        "Seq",
        "Attempts",
        "State",
        "Dead at (UTC)",
        "Reason",
        title="Dead letters",
    )
    for d in letters:
        table.add_row(
            d.consumer.removeprefix(SINK_PREFIX),
            str(d.seq),
            str(d.attempts),
            d.state.value,
            table_time(d.dead_at),
            d.reason,
        )
    console.print(table)
