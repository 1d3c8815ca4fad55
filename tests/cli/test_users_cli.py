"""Site admin CLI: ``users ...`` on a real data folder, with the reference
recognizer running as a child process."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from local_services import Service, reference_recognizer
from synthetic_faces import encode_jpeg, face_image, side_by_side
from typer.testing import CliRunner, Result

from edge_agent.cli import app

runner = CliRunner()
API_KEY = "cli-users-key"
FACES_API = "/api/v1/recognition/faces"


@pytest.fixture(scope="module")
def recognizer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """One reference recognizer process for the module's tests."""
    with reference_recognizer(tmp_path_factory.mktemp("recognizer"), API_KEY) as rec:
        yield rec


@pytest.fixture
def gallery(recognizer: Service) -> Iterator[httpx.Client]:
    """The recognizer's own API, emptied before each test."""
    with httpx.Client(base_url=recognizer.url, headers={"x-api-key": API_KEY}) as c:
        c.delete(FACES_API).raise_for_status()
        yield c


class Cli:
    """Runs ``edge-agent`` commands on one data folder and the recognizer."""

    def __init__(self, data_dir: Path, recognizer: Service) -> None:
        self.data_dir = data_dir
        self.env = {
            "EDGE_AGENT_RECOGNIZER__URL": recognizer.url,
            "EDGE_AGENT_RECOGNIZER__API_KEY": API_KEY,
            "COLUMNS": "200",
        }

    def run(self, *args: str, input: str | None = None) -> Result:
        return runner.invoke(
            app, [*args, "--data-dir", str(self.data_dir)], env=self.env, input=input
        )

    def ok(self, *args: str) -> str:
        result = self.run(*args)
        assert result.exit_code == 0, result.output
        return result.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json"))


@pytest.fixture
def cli(tmp_path: Path, recognizer: Service, gallery: httpx.Client) -> Cli:
    """The CLI on a fresh data folder, with an empty recognizer gallery."""
    return Cli(tmp_path / "data", recognizer)


def _image(folder: Path, identity: str) -> Path:
    path = folder / f"{identity}.jpg"
    path.write_bytes(encode_jpeg(face_image(identity)))
    return path


def test_a_person_from_creation_to_erasure(cli: Cli, tmp_path: Path) -> None:
    person = cli.json("users", "add", "E1", "Alice", "--valid-from", "2026-01-01")
    updated = cli.json(
        "users", "update", "E1", "--name", "Alice Martin", "--department", "Ops"
    )
    deactivated = cli.ok("users", "deactivate", "E1")
    activated = cli.ok("users", "activate", "E1")
    enrolled = cli.ok(
        "users", "enroll", "E1", str(_image(tmp_path, "a")), str(_image(tmp_path, "b"))
    )
    faces = cli.json("users", "faces", "E1")
    removed = cli.ok("users", "remove-face", "E1", faces[1]["id"])
    table = cli.ok("users", "faces", "E1")
    erased = cli.json("users", "delete", "E1", "--yes")

    assert person["valid_from"] == "2026-01-01"
    assert (updated["name"], updated["department"]) == ("Alice Martin", "Ops")
    assert "is inactive" in deactivated
    assert "is active" in activated
    assert enrolled.count("Enrolled") == 2
    assert [f["enrolled_by"].split(":")[0] for f in faces] == ["local", "local"]
    assert faces[1]["id"] in removed
    assert faces[0]["id"] in table
    assert faces[1]["id"] not in table
    assert erased["person"]["status"] == "erased"
    assert erased["face_links_removed"] == 1
    assert cli.json("users", "list") == []
    assert [p["id"] for p in cli.json("users", "list", "--include-erased")] == [
        person["id"]
    ]
    assert "intact" in cli.ok("audit", "verify")


def test_delete_asks_before_it_erases(cli: Cli) -> None:
    cli.ok("users", "add", "E1", "Alice")

    refused = cli.run("users", "delete", "E1", input="n\n")

    assert refused.exit_code == 1
    assert [p["employee_no"] for p in cli.json("users", "list")] == ["E1"]


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["users", "update", "E2", "--employee-no", "E1"], id="taken"),
        pytest.param(["users", "update", "E1", "--valid-until", "soon"], id="bad-date"),
        pytest.param(["users", "remove-face", "E1", "nope"], id="no-such-face"),
    ],
)
def test_refusals_are_one_line(cli: Cli, args: list[str]) -> None:
    cli.ok("users", "add", "E1", "Alice")
    cli.ok("users", "add", "E2", "Bob")

    result = cli.run(*args)

    assert result.exit_code == 1
    assert result.output.count("\n") == 1, result.output
    assert result.output.startswith("error:")


IMPORT_CSV = """employee_no,name,department,valid_from,valid_until,photo
E1,Alice Martin,Ops,2026-01-01,,alice.jpg;alice-2.jpg
E2,Bob Okafor,Logistics,,2026-12-31,bob.jpg
E3,,Ops,,,
E4,Carol,Ops,,,carol.jpg
E5,Erin,Ops,,,two.jpg
"""


def _import_files(folder: Path) -> tuple[Path, Path]:
    photos = folder / "photos"
    photos.mkdir()
    for identity in ("alice", "alice-2", "bob"):
        _image(photos, identity)
    pair = [face_image(n, size=(320, 480)) for n in ("left", "right")]
    (photos / "two.jpg").write_bytes(encode_jpeg(side_by_side(pair)))
    people = folder / "people.csv"
    people.write_text(IMPORT_CSV, encoding="utf-8")
    return people, photos


def test_import_reports_each_row_and_a_rerun_changes_nothing(
    cli: Cli, tmp_path: Path
) -> None:
    people, photos = _import_files(tmp_path)
    errors = tmp_path / "errors.csv"
    args = ("users", "import", str(people), "--photos", str(photos))

    first = cli.run(*args, "--errors", str(errors))
    second = cli.run(*args, "--json")

    assert first.exit_code == 1
    assert "Import" in first.stdout
    assert "Failed rows" in first.stdout
    with errors.open(newline="", encoding="utf-8") as handle:
        report = list(csv.DictReader(handle))
    assert [(r["row"], r["employee_no"]) for r in report] == [
        ("4", "E3"),
        ("5", "E4"),
        ("6", "E5"),
    ]
    assert "carol.jpg" in report[1]["reason"]
    assert "2 faces" in report[2]["reason"]
    body = json.loads(second.stdout)
    assert body["summary"] == {"created": 0, "updated": 0, "unchanged": 2, "failed": 3}
    assert [len(cli.json("users", "faces", e)) for e in ("E1", "E2")] == [2, 1]


def test_an_import_file_with_unknown_columns_is_refused(
    cli: Cli, tmp_path: Path
) -> None:
    people = tmp_path / "people.csv"
    people.write_text("employee_no,name,shoe_size\nE1,Alice,38\n", encoding="utf-8")

    result = cli.run("users", "import", str(people))

    assert result.exit_code == 1
    assert "shoe_size" in result.output
    assert cli.json("users", "list") == []


def test_sync_recognizer_reports_repairs_and_then_finds_nothing(
    cli: Cli, gallery: httpx.Client, tmp_path: Path
) -> None:
    alice = cli.json("users", "add", "E1", "Alice")
    cli.ok("users", "enroll", "E1", str(_image(tmp_path, "alice")))
    gallery.delete(FACES_API, params={"subject": alice["id"]}).raise_for_status()
    ghost = {"file": ("g.jpg", encode_jpeg(face_image("ghost")), "image/jpeg")}
    gallery.post(FACES_API, params={"subject": "ghost"}, files=ghost)

    drift = cli.json("users", "sync-recognizer")
    table = cli.ok("users", "sync-recognizer")
    repaired = cli.json("users", "sync-recognizer", "--repair")
    clean = cli.ok("users", "sync-recognizer")

    assert drift["clean"] is False
    assert drift["orphan_subjects"] == ["ghost"]
    assert [m["person_id"] for m in drift["missing"]] == [alice["id"]]
    assert "--repair" in table
    assert "orphan subject" in table
    assert (repaired["subjects_deleted"], repaired["examples_added"]) == (1, 1)
    assert "no drift" in clean
    subjects = {f["subject"] for f in gallery.get(FACES_API).json()["faces"]}
    assert subjects == {alice["id"]}
