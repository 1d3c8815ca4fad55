"""Site admin CLI: ``edge-agent attendance ...``, marks, daily report and shifts."""

from __future__ import annotations

import csv
import enum
import sys
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any

import typer
from rich.table import Table

from edge_agent.api.rendering import (
    assignment_view,
    attendance_row,
    daily,
    shift_view,
)
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
from edge_agent.models import WEEKDAYS, AttendanceRow, DailyRow, Shift
from edge_agent.services import Services
from edge_agent.services.rules import weekday_names
from edge_agent.services.shifts import NO_SHIFT, ShiftSpec

app = typer.Typer(help="Attendance marks, reports and shifts.", no_args_is_help=True)
shifts_app = typer.Typer(help="Named shifts and who works them.", no_args_is_help=True)
app.add_typer(shifts_app, name="shifts")

DayOption = Annotated[
    str, typer.Option(help="YYYY-MM-DD, 'today' (site-local) or 'all'.")
]
_REPORT_COLUMNS = (
    "employee_no",
    "name",
    "shift",
    "status",
    "first_in",
    "last_out",
    "worked",
    "late",
    "early_exit",
    "missing_check_out",
    "manual",
)


class ReportFormat(enum.StrEnum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"


@app.command("list")
def attendance_list(
    day: DayOption = "today",
    person: Annotated[str | None, typer.Option(help="Id or employee number.")] = None,
    camera: Annotated[str | None, typer.Option(help="Camera id.")] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """List counted attendance marks in time order (voided ones left out)."""

    async def query(services: Services) -> list[AttendanceRow]:
        service = services.attendance
        wanted = _parse_day(day, service.today())
        return await service.list_marks(wanted, person, camera)

    rows = call_services(config, data_dir, query)
    if as_json:
        print_json([attendance_row(r) for r in rows])
        return
    table = Table(
        "Time (UTC)", "Day", "Employee", "Name", "Kind", "Class", "Camera", "Similarity"
    )
    for r in rows:
        similarity = r.mark.similarity
        table.add_row(
            r.mark.marked_at.strftime("%H:%M:%S"),
            r.mark.counts_for,
            r.employee_no,
            r.name,
            r.mark.kind.value,
            r.mark.classification.value,
            r.mark.camera_id or "(manual)",
            f"{similarity:.3f}" if similarity is not None else "",
        )
    console.print(table)


@app.command("report")
def attendance_report(
    day: Annotated[
        str, typer.Option(help="The work day: YYYY-MM-DD or 'today' (site-local).")
    ] = "today",
    output: Annotated[
        ReportFormat, typer.Option("--format", help="table, csv or json.")
    ] = ReportFormat.TABLE,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Each person's work day: first in, last out, worked time and status."""

    async def report(services: Services) -> tuple[date, list[DailyRow]]:
        service = services.attendance
        wanted = service.today() if day == "today" else _parse_date(day, "--day")
        return wanted, await service.daily_report(wanted)

    wanted, rows = call_services(config, data_dir, report)
    if output is ReportFormat.JSON:
        print_json({"day": wanted.isoformat(), "people": [daily(r) for r in rows]})
    elif output is ReportFormat.CSV:
        _write_csv(rows)
    else:
        _print_report(wanted, rows)


@shifts_app.command("add")
def shifts_add(
    name: Annotated[str, typer.Argument(help="Shift name, e.g. day or night.")],
    days: Annotated[str, typer.Option(help="e.g. mon-fri, or sat,sun.")],
    start: Annotated[str, typer.Option(help="Start, HH:MM site-local.")],
    end: Annotated[str, typer.Option(help="End, HH:MM; not after start: next day.")],
    checkin_before: Annotated[
        int, typer.Option(min=0, help="Minutes before start a check-in counts.")
    ] = 60,
    checkout_after: Annotated[
        int, typer.Option(min=0, help="Minutes after end a check-out counts.")
    ] = 120,
    late_grace: Annotated[
        int, typer.Option(min=0, help="Minutes after start before late.")
    ] = 5,
    early_exit_grace: Annotated[
        int, typer.Option(min=0, help="Minutes before end not yet early.")
    ] = 5,
    half_day_hours: Annotated[
        float, typer.Option(min=0, help="Worked hours below which: half day.")
    ] = 4.0,
    absent_hours: Annotated[
        float, typer.Option(min=0, help="Worked hours below which: absent.")
    ] = 2.0,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a shift."""
    spec = ShiftSpec(
        name=name,
        days=_parse_days(days),
        start=_parse_time(start, "--start"),
        end=_parse_time(end, "--end"),
        checkin_before=timedelta(minutes=checkin_before),
        checkout_after=timedelta(minutes=checkout_after),
        late_grace=timedelta(minutes=late_grace),
        early_exit_grace=timedelta(minutes=early_exit_grace),
        half_day_below=timedelta(hours=half_day_hours),
        absent_below=timedelta(hours=absent_hours),
    )
    shift = call_services(
        config, data_dir, lambda s: s.shifts.create(spec, local_actor())
    )
    if as_json:
        print_json(shift_view(shift))
        return
    console.print(f"Created shift {shift.name}: {_describe(shift)}")


@shifts_app.command("list")
def shifts_list(
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the shifts."""
    shifts = call_services(config, data_dir, lambda s: s.shifts.list_shifts())
    if as_json:
        print_json([shift_view(s) for s in shifts])
        return
    table = Table("Name", "Schedule", "Check-in from", "Check-out until", "Graces")
    for s in shifts:
        table.add_row(
            s.name,
            _describe(s),
            f"-{_minutes(s.checkin_before)} min",
            f"+{_minutes(s.checkout_after)} min",
            f"late {_minutes(s.late_grace)}, early {_minutes(s.early_exit_grace)}",
        )
    console.print(table)


@shifts_app.command("assign")
def shifts_assign(
    person: Annotated[str, typer.Argument(help="Person id or employee number.")],
    shift: Annotated[str, typer.Argument(help=f"Shift name, or '{NO_SHIFT}'.")],
    start: Annotated[
        str | None,
        typer.Option("--from", help="First day, YYYY-MM-DD (default today)."),
    ] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Assign a person's shift from a day on ('none' ends the assignment)."""
    effective = _parse_date(start, "--from") if start else None
    chosen = None if shift == NO_SHIFT else shift
    assignment = call_services(
        config,
        data_dir,
        lambda s: s.shifts.assign(person, chosen, effective, local_actor()),
    )
    if as_json:
        print_json(assignment_view(assignment))
        return
    console.print(
        f"Person {assignment.person_id} works {shift} "
        f"from {assignment.effective_from.isoformat()}"
    )


def _print_report(day: date, rows: list[DailyRow]) -> None:
    table = Table(
        "Employee",
        "Name",
        "Shift",
        "Status",
        "In",
        "Out",
        "Worked",
        "Flags",
        title=f"Attendance of {day.isoformat()}",
    )
    for row in rows:
        flags = [
            name
            for name, on in (
                ("late", row.late),
                ("early exit", row.early_exit),
                ("no check-out", row.missing_check_out),
                ("manual", row.manual),
            )
            if on
        ]
        table.add_row(
            row.employee_no,
            row.name,
            row.shift or "",
            row.status.value,
            _clock(row.first_in),
            _clock(row.last_out),
            _duration(row.worked),
            ", ".join(flags),
        )
    console.print(table)


def _write_csv(rows: list[DailyRow]) -> None:
    writer = csv.DictWriter(sys.stdout, fieldnames=_REPORT_COLUMNS)
    writer.writeheader()
    for row in rows:
        view: dict[str, Any] = daily(row)
        view["worked"] = _duration(row.worked)
        writer.writerow({column: view[column] for column in _REPORT_COLUMNS})


def _clock(moment: datetime | None) -> str:
    # The report is about site-local days, so times are shown in UTC with the
    # zone named, rather than guessed in the reader's zone.
    return moment.strftime("%H:%M UTC") if moment else ""


def _duration(worked: timedelta) -> str:
    minutes = _minutes(worked)
    return f"{minutes // 60}:{minutes % 60:02d}"


def _minutes(duration: timedelta) -> int:
    return int(duration.total_seconds() // 60)


def _describe(shift: Shift) -> str:
    days = ",".join(weekday_names(shift.days))
    start = shift.start.isoformat(timespec="minutes")
    end = shift.end.isoformat(timespec="minutes")
    night = " (next day)" if shift.crosses_midnight else ""
    return f"{days} {start}-{end}{night}"


def _parse_day(text: str, today: date) -> date | None:
    if text == "all":
        return None
    if text == "today":
        return today
    return _parse_date(text, "--day")


def _parse_date(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        fail(f"{option} {text!r} is not YYYY-MM-DD", code=2)


def _parse_time(text: str, option: str) -> time:
    try:
        return time.fromisoformat(text)
    except ValueError:
        fail(f"{option} {text!r} is not HH:MM", code=2)


def _parse_days(text: str) -> list[int]:
    """``mon-fri``, ``sat,sun`` or a mix (``mon-wed,fri``) as weekday numbers."""
    days: list[int] = []
    for part in text.lower().replace(" ", "").split(","):
        first, _, last = part.partition("-")
        if first not in WEEKDAYS or (last and last not in WEEKDAYS):
            fail(f"--days {text!r}: use mon..sun, ranges like mon-fri", code=2)
        start, stop = WEEKDAYS.index(first), WEEKDAYS.index(last or first)
        # A range may wrap over the week's end: fri-mon is fri, sat, sun, mon.
        days.extend((start + step) % 7 for step in range((stop - start) % 7 + 1))
    return sorted(set(days))
