"""Tests for the reference recognizer, over real HTTP on a loopback port."""

from __future__ import annotations

import asyncio
import base64
import functools
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import numpy as np
import pytest
from reference_recognizer import FaceAnalyzer, NoFaceFoundError, build_app
from synthetic_faces import (
    encode_jpeg,
    face_image,
    on_canvas,
    side_by_side,
    stranger_identity,
)

if TYPE_CHECKING:
    from .conftest import Serve

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "reference_recognizer.py"
API_KEY = "test-key"
HEADERS = {"x-api-key": API_KEY}
RECOGNIZE = "/api/v1/recognition/recognize"
FACES = "/api/v1/recognition/faces"
SUBJECTS = "/api/v1/recognition/subjects"
FACE = "/v1/vision/face"
FAULTS = "/_faults"


@functools.cache
def enrollment_jpeg(identity: str) -> bytes:
    return encode_jpeg(face_image(identity))


def camera_jpeg(identity: str, seed: int = 0) -> bytes:
    return encode_jpeg(face_image(identity, rng=np.random.default_rng(seed)))


def uniform_jpeg() -> bytes:
    return encode_jpeg(np.full((480, 640, 3), 128, dtype=np.uint8))


def upload(data: bytes) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("file", data, filename="frame.jpg", content_type="image/jpeg")
    return form


def face_form(files: Sequence[bytes], fields: dict[str, str]) -> aiohttp.FormData:
    form = aiohttp.FormData(default_to_multipart=True)
    for name, value in fields.items():
        form.add_field(name, value)
    for number, data in enumerate(files, start=1):
        form.add_field(
            f"image{number}", data, filename=f"{number}.jpg", content_type="image/jpeg"
        )
    return form


class Recognizer:
    """A thin client for the endpoints under test."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session = session
        self.url = url

    async def call(
        self, method: str, path: str, **kwargs: Any
    ) -> tuple[int, dict[str, Any]]:
        kwargs.setdefault("headers", HEADERS)
        async with self.session.request(method, self.url + path, **kwargs) as rsp:
            return rsp.status, await rsp.json()

    async def enroll(self, subject: str, data: bytes) -> str:
        status, body = await self.call(
            "POST", FACES, params={"subject": subject}, data=upload(data)
        )
        assert status == 201, body
        assert body["subject"] == subject
        return str(body["image_id"])

    async def recognize(self, data: bytes, **params: Any) -> tuple[int, Any]:
        return await self.call("POST", RECOGNIZE, params=params, data=upload(data))

    async def face(
        self, command: str, *files: bytes, **fields: str
    ) -> tuple[int, dict[str, Any]]:
        """Call the CodeProject.AI face API; files go as image1..imageN."""
        path = f"{FACE}/{command}" if command else FACE
        return await self.call("POST", path, data=face_form(files, fields))


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain client session, closed after the test."""
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
async def recognizer(
    serve: Serve, session: aiohttp.ClientSession
) -> AsyncIterator[Recognizer]:
    """The reference recognizer on a loopback port, called through ``session``."""
    async with serve(build_app(API_KEY)) as url:
        yield Recognizer(session, url)


async def test_status_needs_no_key(recognizer: Recognizer) -> None:
    assert await recognizer.call("GET", "/status", headers={}) == (
        200,
        {"status": "OK"},
    )


@pytest.mark.parametrize("headers", [{}, {"x-api-key": "wrong"}])
async def test_missing_or_wrong_key_is_401(
    recognizer: Recognizer, headers: dict[str, str]
) -> None:
    status, body = await recognizer.call("GET", SUBJECTS, headers=headers)

    assert status == 401
    assert set(body) == {"message", "code"}


async def test_enrolled_identities_are_recognised(recognizer: Recognizer) -> None:
    for identity in ("alice", "bob"):
        await recognizer.enroll(identity, enrollment_jpeg(identity))

    for identity in ("alice", "bob"):
        status, body = await recognizer.recognize(camera_jpeg(identity, seed=3))
        assert status == 200, body
        [face] = body["result"]
        [best] = face["subjects"]
        assert best["subject"] == identity
        assert best["similarity"] > 0.9
        assert face["box"] == {
            "probability": 1.0,
            "x_min": 0,
            "y_min": 0,
            "x_max": 640,
            "y_max": 480,
        }


async def test_prediction_count_lists_subjects_best_first(
    recognizer: Recognizer,
) -> None:
    for identity in ("alice", "bob", "carol"):
        await recognizer.enroll(identity, enrollment_jpeg(identity))

    status, body = await recognizer.recognize(camera_jpeg("bob"), prediction_count=2)

    assert status == 200
    subjects = body["result"][0]["subjects"]
    assert [s["subject"] for s in subjects][:1] == ["bob"]
    assert len(subjects) == 2
    assert subjects[0]["similarity"] >= subjects[1]["similarity"]
    assert all(s["similarity"] == round(s["similarity"], 5) for s in subjects)


async def test_a_stranger_scores_low(recognizer: Recognizer) -> None:
    for identity in ("alice", "bob"):
        await recognizer.enroll(identity, enrollment_jpeg(identity))
    stranger = stranger_identity(np.random.default_rng(11))

    status, body = await recognizer.recognize(camera_jpeg(stranger))

    assert status == 200
    assert body["result"][0]["subjects"][0]["similarity"] < 0.6


async def test_nobody_enrolled_gives_no_subjects(recognizer: Recognizer) -> None:
    status, body = await recognizer.recognize(camera_jpeg("alice"))

    assert status == 200
    assert body["result"][0]["subjects"] == []


async def test_base64_json_bodies_are_accepted(recognizer: Recognizer) -> None:
    encoded = base64.b64encode(enrollment_jpeg("alice")).decode()
    status, _ = await recognizer.call(
        "POST", FACES, params={"subject": "alice"}, json={"file": encoded}
    )
    probe = base64.b64encode(camera_jpeg("alice")).decode()
    data_url = "data:image/jpeg;base64," + probe

    rec_status, body = await recognizer.call("POST", RECOGNIZE, json={"file": data_url})

    assert status == 201
    assert rec_status == 200
    assert body["result"][0]["subjects"][0]["subject"] == "alice"


@pytest.mark.parametrize("path", [RECOGNIZE, f"{FACES}?subject=alice"])
async def test_a_uniform_image_has_no_face(recognizer: Recognizer, path: str) -> None:
    status, body = await recognizer.call("POST", path, data=upload(uniform_jpeg()))

    assert status == 400
    assert body == {"message": "No face is found in the given image", "code": 28}


@pytest.mark.parametrize("data", [b"certainly not a picture", b""])
async def test_non_image_bytes_are_rejected(
    recognizer: Recognizer, data: bytes
) -> None:
    status, body = await recognizer.recognize(data)

    assert status == 400
    assert body["code"] == 26


async def test_bad_base64_is_rejected(recognizer: Recognizer) -> None:
    status, body = await recognizer.call("POST", RECOGNIZE, json={"file": "%%%"})

    assert (status, body["code"]) == (400, 26)


async def test_missing_file_and_subject_are_rejected(recognizer: Recognizer) -> None:
    no_file = await recognizer.call("POST", RECOGNIZE, data=b"x")
    no_subject = await recognizer.call(
        "POST", FACES, data=upload(enrollment_jpeg("alice"))
    )

    assert (no_file[0], no_file[1]["code"]) == (400, 34)
    assert (no_subject[0], no_subject[1]["code"]) == (400, 33)


@pytest.mark.parametrize(
    "params",
    [{"prediction_count": "0"}, {"limit": "-1"}, {"det_prob_threshold": "2"}],
)
async def test_bad_query_values_are_rejected(
    recognizer: Recognizer, params: dict[str, str]
) -> None:
    status, body = await recognizer.recognize(camera_jpeg("alice"), **params)

    assert (status, body["code"]) == (400, 36)


async def test_examples_are_listed_a_page_at_a_time(recognizer: Recognizer) -> None:
    for subject, seed in [("alice", 1), ("alice", 2), ("alice", 3), ("bob", 4)]:
        await recognizer.enroll(subject, camera_jpeg(subject, seed))
    await recognizer.enroll("bob", enrollment_jpeg("bob"))

    _, first = await recognizer.call("GET", FACES, params={"page": 0, "size": 2})
    _, last = await recognizer.call("GET", FACES, params={"page": 2, "size": 2})
    _, alice = await recognizer.call("GET", FACES, params={"subject": "alice"})

    assert len(first["faces"]) == 2
    assert (first["total_pages"], first["total_elements"]) == (3, 5)
    assert (last["page_number"], last["page_size"], len(last["faces"])) == (2, 2, 1)
    assert {face["subject"] for face in alice["faces"]} == {"alice"}
    assert (alice["total_elements"], alice["page_size"]) == (3, 20)


async def test_one_example_is_deleted_by_id(recognizer: Recognizer) -> None:
    kept = await recognizer.enroll("alice", enrollment_jpeg("alice"))
    doomed = await recognizer.enroll("alice", camera_jpeg("alice"))

    deleted = await recognizer.call("DELETE", f"{FACES}/{doomed}")
    again = await recognizer.call("DELETE", f"{FACES}/{doomed}")
    _, listing = await recognizer.call("GET", FACES)

    assert deleted == (200, {"image_id": doomed, "subject": "alice"})
    assert (again[0], again[1]["code"]) == (404, 11)
    assert [face["image_id"] for face in listing["faces"]] == [kept]


async def test_examples_are_deleted_by_subject(recognizer: Recognizer) -> None:
    for subject in ("alice", "alice", "bob", "carol"):
        await recognizer.enroll(subject, enrollment_jpeg(subject))

    by_query = await recognizer.call("DELETE", FACES, params={"subject": "alice"})
    by_path = await recognizer.call("DELETE", f"{SUBJECTS}/bob")
    unknown = await recognizer.call("DELETE", f"{SUBJECTS}/bob")
    _, subjects = await recognizer.call("GET", SUBJECTS)

    assert by_query == (200, {"deleted": 2})
    assert by_path == (200, {"subject": "bob"})
    assert (unknown[0], unknown[1]["code"]) == (404, 42)
    assert subjects == {"subjects": ["carol"]}


async def test_enrollments_survive_a_restart(
    serve: Serve, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    store = tmp_path / "faces.json"
    async with serve(build_app(API_KEY, store)) as url:
        first = Recognizer(session, url)
        alice_id = await first.enroll("alice", enrollment_jpeg("alice"))
        await first.enroll("bob", enrollment_jpeg("bob"))
        await first.call("DELETE", f"{SUBJECTS}/bob")

    async with serve(build_app(API_KEY, store)) as url:
        second = Recognizer(session, url)
        _, listing = await second.call("GET", FACES)
        status, body = await second.recognize(camera_jpeg("alice"))

    assert listing["faces"] == [{"image_id": alice_id, "subject": "alice"}]
    assert status == 200
    assert body["result"][0]["subjects"][0]["subject"] == "alice"


class StubCascade:
    """Stands in for OpenCV's Haar cascade, which OpenCV 5 no longer ships."""

    def __init__(self, boxes: list[tuple[int, int, int, int]]) -> None:
        self.boxes = boxes

    def detectMultiScale(self, *args: Any, **kwargs: Any) -> Any:
        return np.array(self.boxes).reshape(-1, 4) if self.boxes else ()


def _with_grey_patch() -> bytes:
    picture = face_image("alice")
    picture[0:100, 0:100] = 128
    return encode_jpeg(picture)


def test_detected_faces_give_one_result_each_biggest_first() -> None:
    cascade = StubCascade([(300, 200, 100, 120), (50, 60, 200, 210), (0, 0, 90, 90)])

    faces = FaceAnalyzer(cascade).analyse(_with_grey_patch())

    # The uniform grey corner is no face, so only two boxes survive.
    boxes = [(f.x_min, f.y_min, f.x_max, f.y_max) for f in faces]
    assert boxes == [(50, 60, 250, 270), (300, 200, 400, 320)]


def test_without_detections_the_whole_frame_is_one_face() -> None:
    faces = FaceAnalyzer(StubCascade([])).analyse(enrollment_jpeg("alice"))

    assert [(f.x_min, f.y_min, f.x_max, f.y_max) for f in faces] == [(0, 0, 640, 480)]


def test_only_uniform_detections_mean_no_face() -> None:
    analyzer = FaceAnalyzer(StubCascade([(0, 0, 90, 90)]))

    with pytest.raises(NoFaceFoundError):
        analyzer.analyse(_with_grey_patch())


def test_pictures_side_by_side_are_one_face_each() -> None:
    pair = [face_image(name, size=(320, 480)) for name in ("alice", "bob")]

    faces = FaceAnalyzer(None).analyse(encode_jpeg(side_by_side(pair)))

    # A gutter of 32 flat columns parts them; JPEG ringing may blur its edges.
    spans = sorted((f.x_min, f.x_max) for f in faces)
    assert len(spans) == 2
    assert spans[0][0] == 0
    assert spans[0][1] <= 326
    assert spans[1][0] >= 346
    assert spans[1][1] == 672


def test_a_picture_on_a_flat_canvas_is_a_face_of_its_size() -> None:
    picture = on_canvas(face_image("alice", size=(48, 48)), (320, 240))

    faces = FaceAnalyzer(None).analyse(encode_jpeg(picture))

    assert len(faces) == 1
    width, height = faces[0].x_max - faces[0].x_min, faces[0].y_max - faces[0].y_min
    assert 48 <= min(width, height) <= max(width, height) <= 56


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _wait_ready(session: aiohttp.ClientSession, url: str) -> None:
    for _ in range(100):
        try:
            async with session.get(url) as rsp:
                if rsp.status == 200:
                    return
        except aiohttp.ClientConnectionError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError("the recognizer never became ready")


async def test_command_line_server_logs_requests_and_stops_on_sigterm(
    session: aiohttp.ClientSession,
) -> None:
    port = _free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SCRIPT),
        "--port",
        str(port),
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "RECOGNIZER_API_KEY": API_KEY},
    )
    try:
        await _wait_ready(session, f"http://127.0.0.1:{port}/status")
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=15)

    assert process.returncode == 0, stderr.decode()
    assert '"GET /status HTTP/1.1" 200' in stderr.decode()


async def test_prediction_count_ranks_examples_not_subjects(
    recognizer: Recognizer,
) -> None:
    for seed in (1, 2):
        await recognizer.enroll("alice", camera_jpeg("alice", seed))
    await recognizer.enroll("bob", enrollment_jpeg("bob"))

    _, body = await recognizer.recognize(camera_jpeg("alice", 5), prediction_count=3)

    # As CompreFace does: one entry per example, so alice comes twice.
    subjects = [s["subject"] for s in body["result"][0]["subjects"]]
    assert subjects == ["alice", "alice", "bob"]


# CodeProject.AI face API --------------------------------------------------


async def test_codeproject_register_and_recognize(recognizer: Recognizer) -> None:
    added = await recognizer.face(
        "register", enrollment_jpeg("alice"), camera_jpeg("alice", 1), userid="alice"
    )
    await recognizer.face("register", enrollment_jpeg("bob"), userid="bob")

    status, body = await recognizer.face("recognize", camera_jpeg("alice", 7))

    assert added == (200, {"success": True, "message": "face added"})
    assert status == 200
    assert body["success"] is True
    assert body["count"] == 1
    [face] = body["predictions"]
    assert face["userid"] == "alice"
    assert face["confidence"] > 0.9
    assert (face["x_min"], face["y_min"], face["x_max"], face["y_max"]) == (
        0,
        0,
        640,
        480,
    )


async def test_codeproject_register_replaces_the_examples(
    recognizer: Recognizer,
) -> None:
    await recognizer.enroll("alice", enrollment_jpeg("alice"))
    await recognizer.enroll("alice", camera_jpeg("alice", 1))

    updated = await recognizer.face("register", camera_jpeg("alice", 2), userid="alice")
    _, listing = await recognizer.call("GET", FACES, params={"subject": "alice"})

    assert updated == (200, {"success": True, "message": "face updated"})
    assert listing["total_elements"] == 1


async def test_codeproject_register_skips_files_without_a_face(
    recognizer: Recognizer,
) -> None:
    status, _ = await recognizer.face(
        "register", uniform_jpeg(), enrollment_jpeg("alice"), userid="alice"
    )
    refused = await recognizer.face("register", uniform_jpeg(), userid="bob")
    _, listing = await recognizer.call("GET", FACES)

    assert status == 200
    assert refused == (400, {"success": False, "error": "No face detected"})
    assert [face["subject"] for face in listing["faces"]] == ["alice"]


async def test_codeproject_below_min_confidence_is_unknown(
    recognizer: Recognizer,
) -> None:
    await recognizer.face("register", enrollment_jpeg("alice"), userid="alice")
    stranger = stranger_identity(np.random.default_rng(11))

    _, strict = await recognizer.face(
        "recognize", camera_jpeg("alice", 2), min_confidence="1.0"
    )
    _, default = await recognizer.face("recognize", camera_jpeg(stranger))

    for body in (strict, default):
        [face] = body["predictions"]
        assert (face["userid"], face["confidence"]) == ("unknown", 0.0)


async def test_codeproject_detection_finds_faces_without_naming_them(
    recognizer: Recognizer,
) -> None:
    found = await recognizer.face("", enrollment_jpeg("alice"))
    none = await recognizer.face("", uniform_jpeg())

    assert found[0] == 200
    assert found[1]["predictions"] == [
        {"confidence": 1.0, "x_min": 0, "y_min": 0, "x_max": 640, "y_max": 480}
    ]
    assert none == (200, {"success": True, "predictions": [], "count": 0})


async def test_codeproject_list_and_delete_share_the_gallery(
    recognizer: Recognizer,
) -> None:
    await recognizer.enroll("alice", enrollment_jpeg("alice"))
    await recognizer.face("register", enrollment_jpeg("bob"), userid="bob")

    listed = await recognizer.face("list")
    deleted = await recognizer.face("delete", userid="alice")
    unknown = await recognizer.face("delete", userid="nobody")
    _, subjects = await recognizer.call("GET", SUBJECTS)

    assert listed == (200, {"success": True, "faces": ["alice", "bob"]})
    assert deleted == (200, {"success": True})
    assert unknown == (200, {"success": True})
    assert subjects == {"subjects": ["bob"]}


@pytest.mark.parametrize(
    ("command", "files", "fields", "error"),
    [
        (
            "recognize",
            [b"not an image"],
            {},
            "The image provided was of an unknown type",
        ),
        ("recognize", [], {}, "No valid image file found"),
        ("register", [b"x"], {}, "user id not specified"),
        ("register", [], {"userid": "alice"}, "No valid image file found"),
        ("delete", [], {}, "user id not specified"),
        ("recognize", [b"x"], {"min_confidence": "2"}, "min_confidence must be"),
    ],
    ids=[
        "unreadable",
        "no-file",
        "no-userid",
        "no-images",
        "delete-no-userid",
        "bad-confidence",
    ],
)
async def test_codeproject_errors_are_success_false(
    recognizer: Recognizer,
    command: str,
    files: list[bytes],
    fields: dict[str, str],
    error: str,
) -> None:
    status, body = await recognizer.face(command, *files, **fields)

    assert status == 400
    assert body["success"] is False
    assert body["error"].startswith(error)


async def test_codeproject_no_face_is_an_error(recognizer: Recognizer) -> None:
    answer = await recognizer.face("recognize", uniform_jpeg())

    assert answer == (400, {"success": False, "error": "No face found in image"})


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Authorization": f"Bearer {API_KEY}"}, 200),
        ({"Authorization": "Bearer wrong"}, 401),
        ({"Authorization": f"Basic {API_KEY}"}, 401),
        ({}, 401),
    ],
    ids=["bearer", "wrong-bearer", "other-scheme", "none"],
)
async def test_the_key_may_come_as_a_bearer_token(
    recognizer: Recognizer, headers: dict[str, str], status: int
) -> None:
    answer, body = await recognizer.call("POST", f"{FACE}/list", headers=headers)

    assert answer == status
    assert ("error" in body) is (status == 401)


async def test_codeproject_urlencoded_forms_are_accepted(
    recognizer: Recognizer,
) -> None:
    await recognizer.face("register", enrollment_jpeg("alice"), userid="alice")

    answer = await recognizer.call(
        "POST", f"{FACE}/delete", data=aiohttp.FormData({"userid": "alice"})
    )

    assert answer == (200, {"success": True})


# Fault injection -----------------------------------------------------------


async def test_injected_failures_answer_the_next_calls(
    recognizer: Recognizer,
) -> None:
    set_status, faults = await recognizer.call(
        "POST", FAULTS, json={"fail_next": 2, "status": 502}
    )

    first = await recognizer.call("GET", SUBJECTS)
    second = await recognizer.face("list")
    third = await recognizer.call("GET", SUBJECTS)
    _, counts = await recognizer.call("GET", FAULTS)

    assert (set_status, faults["fail_next"], faults["status"]) == (200, 2, 502)
    assert first == (502, {"message": "Injected fault", "code": 0})
    assert second == (502, {"success": False, "error": "Injected fault"})
    assert third == (200, {"subjects": []})
    assert (counts["fail_next"], counts["requests"]) == (0, 3)


async def test_an_injected_delay_is_counted_in_flight(
    recognizer: Recognizer,
) -> None:
    await recognizer.call("POST", FAULTS, json={"delay_s": 0.05})

    await asyncio.gather(*(recognizer.call("GET", SUBJECTS) for _ in range(3)))
    _, counts = await recognizer.call("GET", FAULTS)
    _, cleared = await recognizer.call("DELETE", FAULTS)

    assert (counts["max_in_flight"], counts["in_flight"]) == (3, 0)
    assert cleared == {
        "fail_next": 0,
        "status": 503,
        "delay_s": 0.0,
        "in_flight": 0,
        "max_in_flight": 0,
        "requests": 0,
    }


async def test_status_is_never_faulted(recognizer: Recognizer) -> None:
    await recognizer.call("POST", FAULTS, json={"fail_next": 1})

    assert (await recognizer.call("GET", "/status", headers={}))[0] == 200
    assert (await recognizer.call("GET", SUBJECTS))[0] == 503


@pytest.mark.parametrize(
    "document",
    [
        {"fail_next": -1},
        {"status": 200},
        {"status": "503"},
        {"delay_s": 61},
        {"fail_next": True},
        {"drop": 1},
        [1, 2],
    ],
    ids=[
        "negative",
        "not-an-error",
        "text-status",
        "long-delay",
        "boolean",
        "unknown-key",
        "not-an-object",
    ],
)
async def test_bad_fault_documents_are_rejected(
    recognizer: Recognizer, document: Any
) -> None:
    status, body = await recognizer.call("POST", FAULTS, json=document)

    assert (status, body["code"]) == (400, 36)


async def test_faults_need_the_key(recognizer: Recognizer) -> None:
    status, _ = await recognizer.call("POST", FAULTS, json={}, headers={})
    _, faults = await recognizer.call("GET", FAULTS)

    assert status == 401
    assert faults["fail_next"] == 0
