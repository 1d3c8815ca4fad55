"""Site admin CLI: ``edge-agent sync ...``, shipping the streams to the office.

``status`` and ``now`` ask the running daemon (its workers' state lives in its
memory); ``status --offline`` reads the database alone, for a stopped daemon.
``resume``, ``redrive`` and ``dead-letters`` work on the database, which the
daemon reads at its next round.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from edge_agent.api import rendering
from edge_agent.cli.common import (
    ConfigOption,
    DataDirOption,
    JsonOption,
    call_services,
    console,
    fail,
    local_actor,
    print_json,
    settings_from,
    with_services,
)
from edge_agent.cli.daemon import call_daemon
from edge_agent.config import Settings
from edge_agent.errors import EdgeError

app = typer.Typer(help="Sync to the central server.", no_args_is_help=True)


@app.command("status")
def sync_status(
    offline: Annotated[
        bool, typer.Option(help="Read the database, not the running daemon.")
    ] = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Each stream: local head, acknowledged mark, lag and last error."""
    settings = settings_from(config, data_dir)
    if offline:
        streams = with_services(settings, lambda s: s.sync.status())
        body: dict[str, Any] = {
            "enabled": settings.sync.url is not None,
            "streams": [
                {**rendering.sync_stream(s), "state": "daemon not asked"}
                for s in streams
            ],
        }
    else:
        body = _ask(settings, "GET", "/v1/sync/status")
    if as_json:
        print_json(body)
        return
    _print_status(body)


@app.command("now")
def sync_now(config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """Ask the running daemon to sync every stream now."""
    settings = settings_from(config, data_dir)
    answer = _ask(settings, "POST", "/v1/sync/now")
    if not answer.get("enabled"):
        fail("sync is off: no central server URL is configured (sync.url)")
    console.print("Sync round started")


@app.command("resume")
def sync_resume(
    stream: str, config: ConfigOption = None, data_dir: DataDirOption = None
) -> None:
    """Let a stopped stream go on, once its cause is understood."""
    call_services(config, data_dir, lambda s: s.sync.resume(stream, local_actor()))
    console.print(f"Stream {stream} resumed")


@app.command("redrive")
def sync_redrive(
    stream: str,
    seq: Annotated[
        list[int] | None, typer.Option("--seq", help="Only this seq (repeatable).")
    ] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Send a stream's dead letters again."""
    queued = call_services(
        config, data_dir, lambda s: s.sync.redrive(stream, seq or None, local_actor())
    )
    console.print(f"{len(queued)} record(s) of {stream} queued to be sent again")


@app.command("dead-letters")
def sync_dead_letters(
    stream: Annotated[str | None, typer.Option(help="Only this stream.")] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Records the central server set aside, and why."""
    letters = call_services(config, data_dir, lambda s: s.sync.dead_letters(stream))
    rows = [rendering.sync_dead_letter(d) for d in letters]
    if as_json:
        print_json({"dead_letters": rows})
        return
    table = Table("Stream", "Seq", "State", "Reason", "Since", title="Dead letters")
    for row in rows:
        table.add_row(
            row["stream"], str(row["seq"]), row["state"], row["reason"], row["dead_at"]
        )
    console.print(table)


def _ask(settings: Settings, method: str, path: str) -> Any:
    """The running daemon's answer, or exit 1 pointing at ``--offline``."""
    try:
        return call_daemon(settings, method, path)
    except EdgeError as exc:
        fail(f"{exc.detail} (use --offline to read the database)")


def _print_status(body: dict[str, Any]) -> None:
    title = "Sync" if body.get("enabled") else "Sync (off: no sync.url)"
    table = Table(
        "Stream",
        "State",
        "Head",
        "Acked",
        "Lag",
        "Lag (s)",
        "Dead",
        "Last error",
        title=title,
    )
    for s in body["streams"]:
        lag_s = "" if s["lag_s"] is None else f"{s['lag_s']:.0f}"
        table.add_row(
            s["stream"],
            s["state"],
            str(s["head"]),
            str(s["acked"]),
            str(s["lag_records"]),
            lag_s,
            str(s["dead_letters"]),
            s["last_error"] or "",
        )
    console.print(table)
