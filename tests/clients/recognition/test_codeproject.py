"""CodeProject.AI client against the reference recognizer, over real HTTP."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
from aiohttp import web
from local_services import free_port
from synthetic_faces import stranger_identity

from edge_agent.clients.recognition.base import (
    RecognizerCallFailed,
    RecognizerKeyRejected,
)
from edge_agent.clients.recognition.codeproject import (
    CodeProjectClient,
    example_id,
    subject_of,
)
from edge_agent.clients.recognition.compreface import CompreFaceClient
from edge_agent.errors import NoFaceFound
from tests import servers
from tests.clients.recognition.support import (
    KEY,
    Reference,
    blank_jpeg,
    camera_jpeg,
    enrollment_jpeg,
)


@pytest.fixture
async def client(reference: Reference) -> AsyncIterator[CodeProjectClient]:
    """A client opened against the ``reference`` server with its key."""
    recognizer = CodeProjectClient(reference.url, KEY, timeout_s=5)
    await recognizer.open()
    yield recognizer
    await recognizer.close()


def _subjects(reference: Reference, subject: str) -> int:
    return len(reference.collection.examples(subject))


async def test_enrollment_registers_the_new_image_with_the_others(
    reference: Reference, client: CodeProjectClient
) -> None:
    first = enrollment_jpeg("alice")
    second = camera_jpeg("alice", 1)

    first_id = await client.add_example("alice", first)
    second_id = await client.add_example("alice", second, others=[first])

    digest = hashlib.sha256(second).hexdigest()[:16]
    assert second_id == f"alice#{digest}"
    assert first_id != second_id
    assert _subjects(reference, "alice") == 2


async def test_enrollment_without_the_others_replaces_the_registration(
    reference: Reference, client: CodeProjectClient
) -> None:
    await client.add_example("alice", enrollment_jpeg("alice"))
    await client.add_example(
        "alice", camera_jpeg("alice", 1), others=[enrollment_jpeg("alice")]
    )

    await client.add_example("alice", camera_jpeg("alice", 2))

    assert _subjects(reference, "alice") == 1


async def test_an_enrollment_image_without_a_face_is_refused_and_changes_nothing(
    reference: Reference, client: CodeProjectClient
) -> None:
    await client.add_example("alice", enrollment_jpeg("alice"))

    with pytest.raises(NoFaceFound):
        await client.add_example("alice", blank_jpeg(), others=[camera_jpeg("bob", 1)])

    assert _subjects(reference, "alice") == 1


async def test_a_known_face_is_its_subject_and_a_stranger_nobody(
    client: CodeProjectClient,
) -> None:
    await client.add_example("alice", enrollment_jpeg("alice"))
    await client.add_example("bob", enrollment_jpeg("bob"))
    stranger = stranger_identity(np.random.default_rng(5))

    [known] = await client.recognize(camera_jpeg("alice", 3))
    [unknown] = await client.recognize(camera_jpeg(stranger, 3))

    [alice] = known.candidates
    assert alice.subject == "alice"
    assert alice.similarity > 0.9
    assert known.box.x_max > known.box.x_min
    # Below min_confidence the service says "unknown": no candidate at all.
    assert unknown.candidates == ()


async def test_nobody_enrolled_gives_faces_without_candidates(
    client: CodeProjectClient,
) -> None:
    [face] = await client.recognize(camera_jpeg("alice", 3))

    assert face.candidates == ()


async def test_no_face_is_an_empty_answer(client: CodeProjectClient) -> None:
    assert await client.recognize(blank_jpeg()) == []


async def test_subjects_are_listed_one_entry_each(
    client: CodeProjectClient,
) -> None:
    await client.add_example("alice", enrollment_jpeg("alice"))
    await client.add_example(
        "alice", camera_jpeg("alice", 1), others=[enrollment_jpeg("alice")]
    )
    await client.add_example("bob", enrollment_jpeg("bob"))

    everyone = await client.list_examples()
    bob = await client.list_examples("bob")

    assert sorted((e.image_id, e.subject) for e in everyone) == [
        ("alice", "alice"),
        ("bob", "bob"),
    ]
    assert [e.subject for e in bob] == ["bob"]


async def test_deleting_an_example_registers_the_remaining_images(
    reference: Reference, client: CodeProjectClient
) -> None:
    kept = enrollment_jpeg("alice")
    await client.add_example("alice", kept)
    doomed = await client.add_example("alice", camera_jpeg("alice", 1), others=[kept])

    await client.delete_example(doomed, remaining=[kept])

    assert _subjects(reference, "alice") == 1
    [face] = await client.recognize(camera_jpeg("alice", 4))
    assert [c.subject for c in face.candidates] == ["alice"]


async def test_deleting_the_last_example_drops_the_subject(
    client: CodeProjectClient,
) -> None:
    only = await client.add_example("alice", enrollment_jpeg("alice"))

    await client.delete_example(only)
    await client.delete_example(only)  # already gone: not an error

    assert await client.list_examples() == []


async def test_deleting_a_subject_counts_its_one_registration(
    client: CodeProjectClient,
) -> None:
    await client.add_example("alice", enrollment_jpeg("alice"))
    await client.add_example("bob", enrollment_jpeg("bob"))

    removed = await client.delete_subject_examples("alice")
    again = await client.delete_subject_examples("alice")

    assert (removed, again) == (1, 0)
    assert [e.subject for e in await client.list_examples()] == ["bob"]


async def test_a_subject_enrolled_through_compreface_is_recognized(
    reference: Reference, client: CodeProjectClient
) -> None:
    compreface = CompreFaceClient(reference.url, KEY)
    await compreface.open()
    await compreface.add_example("carol", enrollment_jpeg("carol"))
    await compreface.close()

    [face] = await client.recognize(camera_jpeg("carol", 2))

    assert [c.subject for c in face.candidates] == ["carol"]


@pytest.mark.parametrize(
    ("image_id", "subject"),
    [("alice#0123456789abcdef", "alice"), ("alice", "alice"), ("a#b#0123", "a#b")],
    ids=["synthesized", "bare-subject", "subject-with-separator"],
)
def test_example_ids_name_their_subject(image_id: str, subject: str) -> None:
    assert subject_of(image_id) == subject
    assert subject_of(example_id(subject, b"x")) == subject


async def test_an_overloaded_service_is_a_transient_failure(
    reference: Reference, client: CodeProjectClient
) -> None:
    reference.faults.update({"fail_next": 1, "status": 503})

    with pytest.raises(RecognizerCallFailed) as failure:
        await client.recognize(enrollment_jpeg("alice"))

    assert failure.value.transient
    assert failure.value.http_status == 503


async def test_a_wrong_key_is_a_permanent_failure(reference: Reference) -> None:
    client = CodeProjectClient(reference.url, "not-the-key")
    await client.open()

    with pytest.raises(RecognizerKeyRejected) as failure:
        await client.list_examples()
    await client.close()

    assert not failure.value.transient
    assert "not-the-key" not in str(failure.value)


async def test_an_unreadable_image_is_a_permanent_failure(
    client: CodeProjectClient,
) -> None:
    with pytest.raises(RecognizerCallFailed) as failure:
        await client.recognize(b"certainly not a picture")

    assert not failure.value.transient


async def test_a_dead_service_is_a_transient_failure() -> None:
    dead = CodeProjectClient(f"http://127.0.0.1:{free_port()}", timeout_s=1)
    await dead.open()

    with pytest.raises(RecognizerCallFailed) as failure:
        await dead.list_examples()
    await dead.close()

    assert failure.value.transient


def _answering(body: dict[str, Any]) -> web.Application:
    """A stand-in service that answers every face call with HTTP 200 and ``body``."""

    async def handler(request: web.Request) -> web.Response:
        return web.json_response(body)

    app = web.Application()
    app.router.add_post("/v1/vision/face/{command}", handler)
    return app


@pytest.mark.parametrize(
    ("body", "transient"),
    [
        ({"success": False, "error": "Unable to load the face detector"}, True),
        ({"success": False, "error": "An Error occurred during processing"}, False),
    ],
    ids=["models-not-loaded", "processing-error"],
)
async def test_a_refusal_with_http_200_is_a_failure(
    body: dict[str, Any], transient: bool
) -> None:
    async with servers.serve(_answering(body)) as url:
        client = CodeProjectClient(url)
        await client.open()
        with pytest.raises(RecognizerCallFailed) as failure:
            await client.recognize(enrollment_jpeg("alice"))
        await client.close()

    assert failure.value.transient is transient


async def test_no_face_with_http_200_is_an_empty_answer() -> None:
    body = {"success": False, "error": "No face found in image"}
    async with servers.serve(_answering(body)) as url:
        client = CodeProjectClient(url)
        await client.open()
        faces = await client.recognize(enrollment_jpeg("alice"))
        await client.close()

    assert faces == []
