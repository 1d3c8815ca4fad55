"""Site admin CLI: ``edge-agent users ...``, the people who can be marked."""

from __future__ import annotations

import csv
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress
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
    table_time,
    with_services,
)
from edge_agent.clients.recognition.base import SubjectExample
from edge_agent.errors import InvalidInput
from edge_agent.models import Person
from edge_agent.services import Services
from edge_agent.services.people import (
    KEEP,
    PersonChanges,
    format_validity,
    parse_validity,
)
from edge_agent.services.people_import import (
    ImportOutcome,
    ImportReport,
    ImportRow,
    RowResult,
    parse_people_csv,
)
from edge_agent.services.recognizer_drift import MissingExample, ReconcileReport

app = typer.Typer(help="People who can be marked.", no_args_is_help=True)

PersonArgument = Annotated[
    str, typer.Argument(help="Person id or employee number.", show_default=False)
]
ValidFromOption = Annotated[
    str | None,
    typer.Option(help="First day (YYYY-MM-DD) or instant (RFC 3339) of validity."),
]
ValidUntilOption = Annotated[
    str | None,
    typer.Option(help="Last day (YYYY-MM-DD) or instant (RFC 3339) of validity."),
]

_ERROR_COLUMNS = ("row", "employee_no", "reason")


@app.command("add")
def users_add(
    employee_no: str,
    name: str,
    department: Annotated[str | None, typer.Option(help="Department.")] = None,
    valid_from: ValidFromOption = None,
    valid_until: ValidUntilOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a person."""
    settings = settings_from(config, data_dir)
    start, end = _bound(valid_from), _bound(valid_until)
    person = with_services(
        settings,
        lambda s: s.users.create(
            employee_no,
            name,
            department,
            local_actor(),
            valid_from=start,
            valid_until=end,
        ),
    )
    if as_json:
        print_json(rendering.person(person))
    else:
        console.print(f"Created {person.name} ({person.employee_no}), id {person.id}")


@app.command("list")
def users_list(
    include_erased: Annotated[
        bool, typer.Option(help="List the tombstones of erased people too.")
    ] = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """List people."""
    people = call_services(
        config, data_dir, lambda s: s.users.list_people(include_erased=include_erased)
    )
    if as_json:
        print_json([rendering.person(p) for p in people])
        return
    table = Table(
        "Employee", "Name", "Department", "Status", "Valid", "Id", title="People"
    )
    for p in people:
        validity = _validity(p.valid_from, p.valid_until)
        table.add_row(
            p.employee_no, p.name, p.department or "", p.status.value, validity, p.id
        )
    console.print(table)


@app.command("update")
def users_update(
    person: PersonArgument,
    employee_no: Annotated[
        str | None, typer.Option(help="New employee number.")
    ] = None,
    name: Annotated[str | None, typer.Option(help="New name.")] = None,
    department: Annotated[
        str | None, typer.Option(help="New department; '' clears it.")
    ] = None,
    valid_from: Annotated[
        str | None, typer.Option(help="YYYY-MM-DD or RFC 3339; '' clears it.")
    ] = None,
    valid_until: Annotated[
        str | None, typer.Option(help="YYYY-MM-DD or RFC 3339; '' clears it.")
    ] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change some of a person's fields; options left out keep their value."""
    changes = PersonChanges(
        employee_no=KEEP if employee_no is None else employee_no,
        name=KEEP if name is None else name,
        department=KEEP if department is None else department or None,
        valid_from=KEEP if valid_from is None else _bound(valid_from),
        valid_until=KEEP if valid_until is None else _bound(valid_until),
    )
    updated = call_services(
        config, data_dir, lambda s: s.users.update(person, changes, local_actor())
    )
    if as_json:
        print_json(rendering.person(updated))
    else:
        console.print(f"Updated {updated.name} ({updated.employee_no})")


def _change_status(
    config: Path | None,
    data_dir: Path | None,
    change: Callable[[Services], Awaitable[Person]],
) -> None:
    done = call_services(config, data_dir, change)
    console.print(f"{done.name} ({done.employee_no}) is {done.status.value}")


@app.command("deactivate")
def users_deactivate(
    person: PersonArgument,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Stop marking a person; their faces stay enrolled."""
    _change_status(
        config, data_dir, lambda s: s.users.deactivate(person, local_actor())
    )


@app.command("activate")
def users_activate(
    person: PersonArgument,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Mark a deactivated person again."""
    _change_status(config, data_dir, lambda s: s.users.activate(person, local_actor()))


@app.command("delete")
def users_delete(
    person: PersonArgument,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask to confirm.")] = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Erase a person: their face data everywhere and their personal fields.

    Attendance marks are kept and then name only the person's id.
    """
    if not yes:
        typer.confirm(f"Erase {person} and all their face data?", abort=True)
    erasure = call_services(
        config, data_dir, lambda s: s.users.erase(person, local_actor())
    )
    if as_json:
        print_json(rendering.erasure(erasure))
        return
    console.print(
        f"Erased person {erasure.person.id}: {erasure.face_links_removed} faces, "
        f"{erasure.recognizer_examples_removed} recognizer examples"
    )


@app.command("enroll")
def users_enroll(
    person: PersonArgument,
    images: Annotated[list[Path], typer.Argument(help="Face images.", exists=True)],
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Add face examples of a person (each image is validated first)."""

    async def enroll_all(services: Services) -> None:
        for image in images:
            enrollment = await services.users.enroll(
                person, image.read_bytes(), local_actor()
            )
            verb = "Enrolled" if enrollment.created else "Already enrolled"
            console.print(f"{verb} {image.name} as face {enrollment.face.id}")

    call_services(config, data_dir, enroll_all)


@app.command("faces")
def users_faces(
    person: PersonArgument,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """List a person's face examples."""
    faces = call_services(config, data_dir, lambda s: s.users.list_faces(person))
    if as_json:
        print_json([rendering.face(f) for f in faces])
        return
    table = Table("Face", "Enrolled (UTC)", "By", "Image SHA-256", title="Faces")
    for f in faces:
        enrolled = table_time(f.enrolled_at)
        table.add_row(f.id, enrolled, f.enrolled_by or "", f.image_sha256[:16])
    console.print(table)


@app.command("remove-face")
def users_remove_face(
    person: PersonArgument,
    face_id: Annotated[str, typer.Argument(help="Face id (see 'users faces').")],
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Remove one face example, at the recognizer too."""
    face = call_services(
        config, data_dir, lambda s: s.users.remove_face(person, face_id, local_actor())
    )
    console.print(f"Removed face {face.id}")


@app.command("sync-recognizer")
def users_sync_recognizer(
    repair: Annotated[
        bool,
        typer.Option(
            "--repair",
            help="Delete orphans and unlinked examples, enroll missing ones again.",
        ),
    ] = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Compare the recognizer's gallery with the people here; report the drift."""
    report = call_services(
        config, data_dir, lambda s: s.users.reconcile(repair, local_actor())
    )
    if as_json:
        print_json(_report_body(report))
        return
    _print_drift(report)


@app.command("import")
def users_import(
    file: Annotated[
        Path, typer.Argument(help="CSV file.", exists=True, dir_okay=False)
    ],
    photos: Annotated[
        Path | None,
        typer.Option(help="Folder of the photos the rows name.", file_okay=False),
    ] = None,
    errors_file: Annotated[
        Path | None,
        typer.Option("--errors", help="Write the failed rows to this CSV file."),
    ] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create or update people from a CSV file and enroll their photos.

    Columns: employee_no, name, and optionally department, valid_from,
    valid_until, photo (file names in --photos, separated by ';'). Running
    the same file again changes nothing. Exits 1 when a row failed.
    """
    rows = _read_rows(file)
    report = call_services(
        config,
        data_dir,
        lambda s: _import_with_progress(s, rows, photos, show=not as_json),
    )

    if errors_file is not None:
        _write_errors(errors_file, report.failures)
    if as_json:
        print_json(_import_body(report))
    else:
        _print_import(report)
    if report.failures:
        raise typer.Exit(1)


def _bound(text: str | None) -> date | datetime | None:
    if not text:
        return None
    try:
        return parse_validity(text)
    except ValueError as exc:
        fail(f"not a date or RFC 3339 time: {text!r} ({exc})")


def _validity(start: date | datetime | None, end: date | datetime | None) -> str:
    if start is None and end is None:
        return ""
    return f"{format_validity(start) or '…'} to {format_validity(end) or '…'}"


def _read_rows(file: Path) -> list[ImportRow]:
    try:
        return parse_people_csv(file.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {file}: {exc}")
    except InvalidInput as exc:
        fail(exc.detail)


async def _import_with_progress(
    services: Services, rows: list[ImportRow], photos: Path | None, *, show: bool
) -> ImportReport:
    with Progress(console=console, transient=True, disable=not show) as progress:
        task = progress.add_task("Importing", total=len(rows))

        def advance(result: RowResult) -> None:
            progress.advance(task)

        return await services.users.import_people(
            rows, photos, local_actor(), on_row=advance
        )


def _write_errors(path: Path, failures: list[RowResult]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(_ERROR_COLUMNS)
        for row in failures:
            writer.writerow((row.line, row.employee_no, row.reason or ""))


def _import_body(report: ImportReport) -> dict[str, Any]:
    return {
        "summary": report.counts,
        "rows": [
            {
                "row": r.line,
                "employee_no": r.employee_no,
                "outcome": r.outcome.value,
                "reason": r.reason,
                "person_id": r.person_id,
            }
            for r in report.rows
        ],
    }


def _print_import(report: ImportReport) -> None:
    summary = Table("Outcome", "Rows", title="Import")
    for outcome in ImportOutcome:
        summary.add_row(outcome.value, str(report.count(outcome)))
    console.print(summary)
    if not report.failures:
        return

    failed = Table(*_ERROR_COLUMNS, title="Failed rows")
    for row in report.failures:
        failed.add_row(str(row.line), row.employee_no, row.reason or "")
    console.print(failed)


def _report_body(report: ReconcileReport) -> dict[str, Any]:
    return {
        "clean": report.clean,
        "orphan_subjects": list(report.orphan_subjects),
        "missing": [_missing(m) for m in report.missing],
        "unlinked": [_unlinked(e) for e in report.unlinked],
        "repaired": report.repaired,
        "subjects_deleted": report.subjects_deleted,
        "examples_deleted": report.examples_deleted,
        "examples_added": report.examples_added,
        "failures": list(report.failures),
    }


def _missing(item: MissingExample) -> dict[str, str]:
    return {"person_id": item.person_id, "face_id": item.face_id}


def _unlinked(example: SubjectExample) -> dict[str, str]:
    return {"subject": example.subject, "example_id": example.image_id}


def _print_drift(report: ReconcileReport) -> None:
    if report.clean:
        console.print("The recognizer matches the people here: no drift")
        return

    table = Table("Drift", "Subject / person", "Example / face", title="Drift")
    for subject in report.orphan_subjects:
        table.add_row("orphan subject", subject, "")
    for item in report.missing:
        table.add_row("missing example", item.person_id, item.face_id)
    for example in report.unlinked:
        table.add_row("unlinked example", example.subject, example.image_id)
    console.print(table)

    if not report.repaired:
        console.print("Run again with --repair to fix it")
        return
    console.print(
        f"Repaired: {report.subjects_deleted} subjects and "
        f"{report.examples_deleted} examples deleted, "
        f"{report.examples_added} examples enrolled again"
    )
    for failure in report.failures:
        console.print(f"Not repaired: {failure}")
