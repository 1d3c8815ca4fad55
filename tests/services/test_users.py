"""User service on a real SQLite file and the reference recognizer over HTTP.

Every test runs against both recognizer APIs the reference server speaks
(CompreFace, which keeps examples one by one, and CodeProject.AI, which
replaces a subject's registration on each call).
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import aiosqlite
import pytest
from hypothesis import given
from hypothesis import strategies as st
from synthetic_faces import (
    encode_jpeg,
    face_image,
    faceless_image,
    on_canvas,
    side_by_side,
)

from edge_agent.clients.recognition.factory import build_recognizer
from edge_agent.clients.recognition.resilient import ResilientRecognizer
from edge_agent.clients.storage import migrations
from edge_agent.clients.storage.audit import AuditRepository
from edge_agent.clients.storage.database import Database
from edge_agent.clients.storage.face_images import FaceImageStore
from edge_agent.clients.storage.people import PeopleRepository
from edge_agent.clock import SystemClock
from edge_agent.config import load_settings
from edge_agent.errors import Conflict, InvalidInput, NoFaceFound, PoorQuality
from edge_agent.imaging.pool import DecodePool
from edge_agent.models import Person, PersonStatus, local_admin
from edge_agent.services.audit import AuditAction, AuditFilter, AuditService
from edge_agent.services.enrollment import FaceTooSmall, SeveralFaces
from edge_agent.services.people import (
    KEEP,
    PersonChanges,
    format_validity,
    parse_validity,
)
from edge_agent.services.people_import import parse_people_csv
from edge_agent.services.recognizer_drift import MissingExample
from edge_agent.services.users import UserService
from tests import servers

API_KEY = "users-test-key"
ADMIN = local_admin("test")
FACES_API = "/api/v1/recognition/faces"


@dataclass
class Site:
    """One appliance's people side: the service and what it stands on."""

    users: UserService
    db: Database
    images: FaceImageStore
    recognizer: ResilientRecognizer
    audit: AuditService
    recognizer_url: str
    kind: str

    async def actions(self) -> list[str]:
        page = await self.audit.list_entries(AuditFilter(), None, 500)
        return [entry.action for entry in page.entries]

    async def subjects(self) -> set[str]:
        return {e.subject for e in await self.recognizer.list_examples()}

    async def at_recognizer(
        self, method: str, path: str, **kwargs: object
    ) -> aiohttp.ClientResponse:
        """Call the recognizer's own HTTP API, behind the appliance's back."""
        headers = {"x-api-key": API_KEY}
        async with (
            aiohttp.ClientSession(self.recognizer_url, headers=headers) as session,
            session.request(method, path, **kwargs) as response,  # type: ignore[arg-type]
        ):
            await response.read()
            assert response.status < 300, response.status
            return response


@pytest.fixture(params=["compreface", "codeproject"])
async def site(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Site]:
    """The user service on a fresh data folder and its own reference recognizer."""
    async with servers.recognizer(API_KEY) as url:
        settings = load_settings(
            overrides={
                "storage": {"data_dir": tmp_path / "data"},
                "recognizer": {"kind": request.param, "url": url, "api_key": API_KEY},
            }
        )
        db = Database(settings.storage.database_path)
        await db.open()
        recognizer = build_recognizer(settings.recognizer)
        await recognizer.open()
        decoder = DecodePool(2)
        clock = SystemClock()
        audit = AuditService(AuditRepository(db), clock)
        images = FaceImageStore(settings.storage.data_dir / "faces")
        users = UserService(
            PeopleRepository(db),
            recognizer,
            images,
            decoder,
            audit,
            clock,
            imaging=settings.imaging,
            min_face_px=60,
        )
        try:
            yield Site(users, db, images, recognizer, audit, url, request.param)
        finally:
            decoder.close()
            await recognizer.close()
            await db.close()


def jpeg(identity: str, size: tuple[int, int] = (640, 480)) -> bytes:
    return encode_jpeg(face_image(identity, size=size))


def two_faces() -> bytes:
    pair = [face_image(n, size=(320, 480)) for n in ("left", "right")]
    return encode_jpeg(side_by_side(pair))


def small_face() -> bytes:
    return encode_jpeg(on_canvas(face_image("tiny", size=(48, 48)), (320, 240)))


# --- people -----------------------------------------------------------------


async def test_update_changes_only_the_given_fields(site: Site) -> None:
    person = await site.users.create("E1", "Alice", "Ops", ADMIN)

    changes = PersonChanges(name=" Alice Martin ", valid_until=date(2026, 12, 31))
    updated = await site.users.update("E1", changes, ADMIN)
    again = await site.users.update(person.id, changes, ADMIN)
    stored = await site.users.get(person.id)

    assert (stored.name, stored.department) == ("Alice Martin", "Ops")
    assert stored.valid_until == date(2026, 12, 31)
    assert stored == updated == again
    # The second, identical update changed nothing and is not audited.
    assert (await site.actions()).count(AuditAction.PERSON_UPDATED) == 1


async def test_update_to_a_taken_employee_number_is_a_conflict(site: Site) -> None:
    await site.users.create("E1", "Alice", None, ADMIN)
    bob = await site.users.create("E2", "Bob", None, ADMIN)

    with pytest.raises(Conflict, match="E1"):
        await site.users.update(bob.id, PersonChanges(employee_no="E1"), ADMIN)

    assert (await site.users.get(bob.id)).employee_no == "E2"


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param(PersonChanges(name="  "), id="blank-name"),
        pytest.param(PersonChanges(employee_no="erased:x"), id="tombstone-number"),
        pytest.param(
            PersonChanges(valid_from=date(2026, 2, 1), valid_until=date(2026, 1, 1)),
            id="until-before-from",
        ),
        pytest.param(
            PersonChanges(
                valid_from=datetime(2026, 1, 2, tzinfo=UTC),
                valid_until=date(2026, 1, 1),
            ),
            id="until-day-before-from-instant",
        ),
    ],
)
async def test_update_refuses_impossible_fields(
    site: Site, changes: PersonChanges
) -> None:
    person = await site.users.create("E1", "Alice", None, ADMIN)

    with pytest.raises(InvalidInput):
        await site.users.update(person.id, changes, ADMIN)


async def test_deactivate_and_activate_are_audited_once_each(site: Site) -> None:
    person = await site.users.create("E1", "Alice", None, ADMIN)

    inactive = await site.users.deactivate("E1", ADMIN)
    await site.users.deactivate("E1", ADMIN)
    stored_inactive = await site.users.get(person.id)
    active = await site.users.activate(person.id, ADMIN)

    assert inactive.status is stored_inactive.status is PersonStatus.INACTIVE
    assert active.status is PersonStatus.ACTIVE
    actions = await site.actions()
    assert actions.count(AuditAction.PERSON_DEACTIVATED) == 1
    assert actions.count(AuditAction.PERSON_ACTIVATED) == 1


async def test_validity_bounds_round_trip_as_dates_and_instants(site: Site) -> None:
    start = parse_validity("2026-03-01T08:00:00+02:00")
    person = await site.users.create(
        "E1", "Alice", None, ADMIN, valid_from=start, valid_until=date(2026, 3, 31)
    )

    stored = await site.users.get(person.id)
    cleared = await site.users.update(person.id, PersonChanges(valid_until=None), ADMIN)

    assert stored.valid_from == datetime(2026, 3, 1, 6, tzinfo=UTC)
    assert stored.valid_until == date(2026, 3, 31)
    assert format_validity(stored.valid_until) == "2026-03-31"
    assert (await site.users.get(person.id)).valid_until is cleared.valid_until is None


def test_validity_needs_an_offset_or_a_plain_date() -> None:
    with pytest.raises(ValueError, match="offset"):
        parse_validity("2026-03-01T08:00:00")
    with pytest.raises(ValueError, match="Invalid isoformat"):
        parse_validity("March 1st")

    assert parse_validity(" 2026-03-01 ") == date(2026, 3, 1)
    assert parse_validity("2026-03-01T08:00:00Z") == datetime(2026, 3, 1, 8, tzinfo=UTC)


@given(
    st.one_of(
        st.dates(),
        st.datetimes(
            min_value=datetime(1900, 1, 2),
            max_value=datetime(9999, 12, 30),
            timezones=st.just(UTC),
        ),
    )
)
def test_validity_text_reads_back_as_itself(bound: date | datetime) -> None:
    assert parse_validity(format_validity(bound) or "") == bound


@pytest.mark.parametrize(
    ("moment", "valid"),
    [
        # The site is at UTC+2: 22:00 UTC on 31 March is already 1 April there.
        pytest.param(datetime(2026, 3, 31, 21, 59, tzinfo=UTC), True, id="last-day"),
        pytest.param(datetime(2026, 3, 31, 22, 0, tzinfo=UTC), False, id="day-after"),
        pytest.param(datetime(2026, 3, 1, 5, 59, tzinfo=UTC), False, id="too-early"),
        pytest.param(datetime(2026, 3, 1, 6, 0, tzinfo=UTC), True, id="first-instant"),
    ],
)
def test_validity_covers_whole_site_days_and_exact_instants(
    moment: datetime, valid: bool
) -> None:
    person = Person(
        "p1",
        "E1",
        "Alice",
        None,
        PersonStatus.ACTIVE,
        moment,
        valid_from=datetime(2026, 3, 1, 6, tzinfo=UTC),
        valid_until=date(2026, 3, 31),
    )

    assert person.valid_at(moment, timezone(timedelta(hours=2))) is valid
    assert Person("p2", "E2", "Bob", None, PersonStatus.ACTIVE, moment).valid_at(
        moment, ZoneInfo("UTC")
    )


# --- enrollment -------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "refusal"),
    [
        pytest.param(lambda: encode_jpeg(faceless_image()), NoFaceFound, id="no-face"),
        pytest.param(two_faces, SeveralFaces, id="two-faces"),
        pytest.param(small_face, FaceTooSmall, id="face-too-small"),
        pytest.param(
            lambda: encode_jpeg(face_image("dark") // 12), PoorQuality, id="too-dark"
        ),
    ],
)
async def test_enrollment_refuses_images_without_one_good_face(
    site: Site, image: object, refusal: type[Exception]
) -> None:
    person = await site.users.create("E1", "Alice", None, ADMIN)
    assert callable(image)

    with pytest.raises(refusal):
        await site.users.enroll(person.id, image(), ADMIN)

    assert await site.users.list_faces(person.id) == []
    assert await site.subjects() == set()
    assert not (site.images.folder / person.id).exists()


async def test_the_refusal_says_how_many_faces_and_how_small(site: Site) -> None:
    person = await site.users.create("E1", "Alice", None, ADMIN)

    with pytest.raises(SeveralFaces) as several:
        await site.users.enroll(person.id, two_faces(), ADMIN)
    with pytest.raises(FaceTooSmall) as small:
        await site.users.enroll(person.id, small_face(), ADMIN)

    assert several.value.extensions["faces"] == 2
    assert small.value.extensions["min_face_px"] == 60
    assert small.value.extensions["width"] < 60


async def test_enrollment_links_the_example_and_who_made_it(site: Site) -> None:
    person = await site.users.create("E1", "Alice", None, ADMIN)
    image = jpeg("alice")

    first = await site.users.enroll("E1", image, ADMIN)
    again = await site.users.enroll("E1", image, ADMIN)

    assert first.created
    assert not again.created
    assert again.face == first.face
    assert first.face.enrolled_by == ADMIN.label
    assert [f.id for f in await site.users.list_faces(person.id)] == [first.face.id]
    assert await site.subjects() == {person.id}
    assert (site.images.folder / person.id).is_dir()
    entry = (await site.audit.list_entries(AuditFilter(), None, 10)).entries[-1]
    assert (entry.action, entry.details) == (
        AuditAction.FACE_ENROLLED,
        {"face": first.face.id},
    )


async def test_an_erased_person_takes_no_changes(site: Site) -> None:
    person = await site.users.create("E1", "Alice", None, ADMIN)
    await site.users.erase(person.id, ADMIN)

    with pytest.raises(Conflict):
        await site.users.enroll(person.id, jpeg("alice"), ADMIN)
    with pytest.raises(Conflict):
        await site.users.update(person.id, PersonChanges(name="Back"), ADMIN)
    with pytest.raises(Conflict):
        await site.users.activate(person.id, ADMIN)


# --- removing faces ---------------------------------------------------------


async def test_removing_a_face_removes_it_at_the_recognizer(site: Site) -> None:
    person = await site.users.create("E1", "Alice", None, ADMIN)
    kept = (await site.users.enroll(person.id, jpeg("alice"), ADMIN)).face
    doomed = (await site.users.enroll(person.id, jpeg("alice-2"), ADMIN)).face

    await site.users.remove_face("E1", doomed.id, ADMIN)
    held = {e.image_id for e in await site.recognizer.list_examples(person.id)}

    assert [f.id for f in await site.users.list_faces(person.id)] == [kept.id]
    assert doomed.example_id not in held
    assert held == ({kept.example_id} if site.kind == "compreface" else {person.id})
    files = sorted(p.stem for p in (site.images.folder / person.id).iterdir())
    assert files == [kept.image_sha256]
    assert AuditAction.FACE_REMOVED in await site.actions()


async def test_removing_the_last_face_leaves_the_subject_empty(site: Site) -> None:
    person = await site.users.create("E1", "Alice", None, ADMIN)
    face = (await site.users.enroll(person.id, jpeg("alice"), ADMIN)).face

    await site.users.remove_face(person.id, face.id, ADMIN)

    assert await site.recognizer.list_examples(person.id) == []
    assert await site.users.list_faces(person.id) == []


# --- erasure ----------------------------------------------------------------

NAME = "Zebulon Quixote-Marchetti"
EMPLOYEE_NO = "EMP-7Q4X9Z"
DEPARTMENT = "Cryptozoology"


def _files_hold(db_path: Path, needles: list[bytes]) -> list[bytes]:
    """The needles found in the database file or its write-ahead log, after a
    checkpoint has moved every committed page into the file."""
    with closing(sqlite3.connect(db_path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    wal = db_path.with_name(db_path.name + "-wal")
    content = db_path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
    return [needle for needle in needles if needle in content]


async def test_erasure_leaves_no_personal_data_behind(site: Site) -> None:
    person = await site.users.create(
        EMPLOYEE_NO, NAME, DEPARTMENT, ADMIN, valid_until=date(2027, 1, 1)
    )
    image = jpeg("zebulon")
    await site.users.enroll(person.id, image, ADMIN)
    await site.users.update(person.id, PersonChanges(department="Field work"), ADMIN)
    prepared = next((site.images.folder / person.id).iterdir()).read_bytes()
    fields = [n.encode() for n in (NAME, EMPLOYEE_NO, "Field work")]
    # The department before the update, and pieces of the face image as
    # uploaded and as stored, must be gone too.
    needles = [*fields, DEPARTMENT.encode(), image[1000:1064], prepared[1000:1064]]
    assert _files_hold(site.db.path, fields) == fields

    erasure = await site.users.erase(EMPLOYEE_NO, ADMIN)

    assert _files_hold(site.db.path, needles) == []
    assert await site.recognizer.list_examples(person.id) == []
    assert not (site.images.folder / person.id).exists()
    assert erasure.face_links_removed == 1
    assert erasure.recognizer_examples_removed == 1
    tombstone = await site.users.get(person.id)
    assert tombstone == erasure.person
    assert tombstone.status is PersonStatus.ERASED
    assert (tombstone.name, tombstone.employee_no) == ("erased", f"erased:{person.id}")
    assert (tombstone.department, tombstone.valid_until) == (None, None)
    assert await site.users.list_faces(person.id) == []


async def test_erasure_is_audited_without_personal_data(site: Site) -> None:
    person = await site.users.create(EMPLOYEE_NO, NAME, DEPARTMENT, ADMIN)
    await site.users.erase(person.id, ADMIN)
    await site.users.erase(person.id, ADMIN)

    entries = (await site.audit.list_entries(AuditFilter(), None, 100)).entries
    erased = [e for e in entries if e.action == AuditAction.PERSON_ERASED]

    assert len(erased) == 2
    assert erased[0].target == f"person:{person.id}"
    assert erased[0].details == {
        "face_links_removed": 0,
        "recognizer_examples_removed": 0,
    }
    text = repr(entries)
    assert [n for n in (NAME, EMPLOYEE_NO, DEPARTMENT) if n in text] == []
    assert await site.users.list_people() == []
    assert [p.id for p in await site.users.list_people(include_erased=True)] == [
        person.id
    ]
    assert (await site.audit.verify()).ok


# --- reconciliation ---------------------------------------------------------


async def test_reconcile_reports_drift_repairs_it_and_then_is_clean(
    site: Site,
) -> None:
    alice = await site.users.create("E1", "Alice", None, ADMIN)
    bob = await site.users.create("E2", "Bob", None, ADMIN)
    await site.users.enroll(alice.id, jpeg("alice"), ADMIN)
    bob_faces = [
        (await site.users.enroll(bob.id, jpeg(n), ADMIN)).face for n in ("bob", "bob-2")
    ]
    assert (await site.users.reconcile(False, ADMIN)).clean

    # Drift made behind the appliance's back, through the recognizer's API.
    await site.at_recognizer("DELETE", FACES_API, params={"subject": bob.id})
    ghost = aiohttp.FormData()
    ghost.add_field("file", jpeg("ghost"), filename="g.jpg")
    await site.at_recognizer("POST", FACES_API, params={"subject": "ghost"}, data=ghost)
    report = await site.users.reconcile(False, ADMIN)
    repaired = await site.users.reconcile(True, ADMIN)
    after = await site.users.reconcile(False, ADMIN)

    assert report.orphan_subjects == ("ghost",)
    assert report.missing == tuple(MissingExample(bob.id, f.id) for f in bob_faces)
    assert not report.repaired
    assert (repaired.subjects_deleted, repaired.examples_added) == (1, 2)
    assert repaired.failures == ()
    assert after.clean, after
    assert await site.subjects() == {alice.id, bob.id}
    assert AuditAction.RECOGNIZER_REPAIRED in await site.actions()
    held = await site.recognizer.list_examples(bob.id)
    assert len(held) == (2 if site.kind == "compreface" else 1)


async def test_reconcile_finds_examples_no_face_link_names(site: Site) -> None:
    if site.kind == "codeproject":
        pytest.skip("the CodeProject.AI API names subjects, never single images")
    alice = await site.users.create("E1", "Alice", None, ADMIN)
    face = (await site.users.enroll(alice.id, jpeg("alice"), ADMIN)).face
    stray = aiohttp.FormData()
    stray.add_field("file", jpeg("alice-2"), filename="a.jpg")
    await site.at_recognizer(
        "POST", FACES_API, params={"subject": alice.id}, data=stray
    )

    report = await site.users.reconcile(True, ADMIN)

    assert [e.subject for e in report.unlinked] == [alice.id]
    assert report.examples_deleted == 1
    held = await site.recognizer.list_examples(alice.id)
    assert [e.image_id for e in held] == [face.example_id]


async def test_repair_names_a_face_whose_stored_image_is_gone(site: Site) -> None:
    alice = await site.users.create("E1", "Alice", None, ADMIN)
    face = (await site.users.enroll(alice.id, jpeg("alice"), ADMIN)).face
    await site.at_recognizer("DELETE", FACES_API, params={"subject": alice.id})
    (site.images.folder / alice.id / f"{face.image_sha256}.img").unlink()

    repaired = await site.users.reconcile(True, ADMIN)

    assert repaired.examples_added == 0
    assert len(repaired.failures) == 1
    assert face.id in repaired.failures[0]
    assert "image is gone" in repaired.failures[0]


# --- bulk import ------------------------------------------------------------

IMPORT_CSV = """employee_no,name,department,valid_from,valid_until,photo
E1,Alice Martin,Ops,2026-01-01,,alice.jpg;alice-2.jpg
E2,Bob Okafor,,,2026-12-31T17:00:00Z,bob.jpg
E3,,Ops,,,
E4,Carol,Ops,,,carol.jpg
E5,Dan,Ops,someday,,
E6,Erin,Ops,,,two.jpg
E7,Frank,Ops,,
"""


def _photos(folder: Path) -> Path:
    folder.mkdir()
    for name in ("alice", "alice-2", "bob"):
        (folder / f"{name}.jpg").write_bytes(jpeg(name))
    (folder / "two.jpg").write_bytes(two_faces())
    return folder


async def test_import_creates_then_changes_nothing_on_a_second_run(
    site: Site, tmp_path: Path
) -> None:
    photos = _photos(tmp_path / "photos")
    rows = parse_people_csv(IMPORT_CSV)
    seen: list[int] = []

    first = await site.users.import_people(
        rows, photos, ADMIN, on_row=lambda r: seen.append(r.line)
    )
    examples = len(await site.recognizer.list_examples())
    second = await site.users.import_people(rows, photos, ADMIN)

    assert seen == [2, 3, 4, 5, 6, 7, 8]
    assert first.counts == {"created": 3, "updated": 0, "unchanged": 0, "failed": 4}
    assert second.counts == {"created": 0, "updated": 0, "unchanged": 3, "failed": 4}
    failures = {(r.line, r.employee_no): r.reason or "" for r in first.failures}
    assert "employee number and a name" in failures[(4, "E3")]
    assert "'carol.jpg' not found" in failures[(5, "E4")]
    assert "not a date or time" in failures[(6, "E5")]
    assert "2 faces" in failures[(7, "E6")]
    # A failed row changes nothing: Erin, refused for her photo, is not there.
    people = {p.employee_no: p for p in await site.users.list_people()}
    assert sorted(people) == ["E1", "E2", "E7"]
    assert len(await site.users.list_faces("E1")) == 2
    assert len(await site.recognizer.list_examples()) == examples
    assert people["E1"].valid_from == date(2026, 1, 1)
    assert people["E2"].valid_until == datetime(2026, 12, 31, 17, tzinfo=UTC)
    assert (await site.actions()).count(AuditAction.PEOPLE_IMPORTED) == 2


async def test_import_updates_changed_rows_and_adds_new_photos(
    site: Site, tmp_path: Path
) -> None:
    photos = _photos(tmp_path / "photos")
    await site.users.import_people(
        parse_people_csv("employee_no,name,photo\nE1,Alice,alice.jpg\n"), photos, ADMIN
    )

    edited = "employee_no,name,department,photo\nE1,Alice M,Ops,alice.jpg;alice-2.jpg\n"
    report = await site.users.import_people(parse_people_csv(edited), photos, ADMIN)
    alice = await site.users.get("E1")

    assert report.counts["updated"] == 1
    assert (alice.name, alice.department) == ("Alice M", "Ops")
    assert len(await site.users.list_faces("E1")) == 2


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("employee_no,department", id="no-name"),
        pytest.param("employee_no,name,valid_untill", id="unknown-column"),
    ],
)
def test_an_import_file_with_a_bad_header_is_refused(header: str) -> None:
    with pytest.raises(InvalidInput, match="columns"):
        parse_people_csv(f"{header}\nE1,x,y\n")


def test_import_rows_keep_their_line_and_extra_fields_are_a_problem() -> None:
    rows = parse_people_csv("employee_no,name\n\nE1,Alice\nE2,Bob,surplus\n")

    assert [(r.line, r.values.get("name"), r.problem) for r in rows] == [
        (3, "Alice", None),
        (4, "Bob", "the row has more fields than the header"),
    ]


def test_changes_name_only_what_they_set() -> None:
    changes = PersonChanges(name="A", department=None)

    assert changes.given() == {"name": "A", "department": None}
    assert PersonChanges().employee_no is KEEP


# --- upgrade ----------------------------------------------------------------


async def test_faces_enrolled_before_the_upgrade_keep_their_ids(tmp_path: Path) -> None:
    path = tmp_path / "edge.sqlite3"
    old = [m for m in migrations.available_migrations() if m.version < 5]
    async with aiosqlite.connect(path, isolation_level=None) as conn:
        await migrations.applied_versions(conn)
        for migration in old:
            await migrations._apply(conn, migration)
        await conn.execute(
            "INSERT INTO people (id, employee_no, name, status, created_at) "
            "VALUES ('p1', 'E1', 'Alice', 'active', '2026-01-01T00:00:00+00:00')"
        )
        await conn.execute(
            "INSERT INTO face_examples (id, person_id, image_sha256, enrolled_at) "
            "VALUES ('cf-1', 'p1', 'abc', '2026-01-01T00:00:00+00:00')"
        )

    db = Database(path)
    await db.open()
    people = PeopleRepository(db)
    person = await people.get("p1")
    faces = await people.list_faces("p1")
    await db.close()

    assert (person.status, person.valid_from, person.erased_at) == (
        PersonStatus.ACTIVE,
        None,
        None,
    )
    assert [(f.id, f.example_id, f.enrolled_by) for f in faces] == [
        ("cf-1", "cf-1", None)
    ]
