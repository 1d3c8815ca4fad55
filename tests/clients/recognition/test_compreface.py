"""CompreFace client against the reference recognizer, over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import numpy as np
import pytest
from local_services import free_port
from synthetic_faces import encode_jpeg, face_image, stranger_identity

from edge_agent.clients.recognition.base import (
    RecognizerCallFailed,
    RecognizerKeyRejected,
)
from edge_agent.clients.recognition.compreface import CompreFaceClient
from edge_agent.errors import NoFaceFound, RecognizerUnavailable
from tests import servers
from tests.clients.recognition.support import (
    KEY,
    Reference,
    camera_jpeg,
    enrollment_jpeg,
)


@pytest.fixture
async def client() -> AsyncIterator[CompreFaceClient]:
    """A client opened against a fresh reference recognizer."""
    async with servers.recognizer(KEY) as url:
        recognizer = CompreFaceClient(url, KEY, timeout_s=5, page_size=2)
        await recognizer.open()
        yield recognizer
        await recognizer.close()


async def test_enrolled_subject_is_recognized(client: CompreFaceClient) -> None:
    await client.add_example("alice", encode_jpeg(face_image("alice")))
    await client.add_example("bob", encode_jpeg(face_image("bob")))
    rng = np.random.default_rng(3)

    faces = await client.recognize(encode_jpeg(face_image("alice", rng=rng)))
    stranger = await client.recognize(
        encode_jpeg(face_image(stranger_identity(rng), rng=rng))
    )

    assert len(faces) == 1
    best = faces[0].best
    assert best is not None
    assert best.subject == "alice"
    assert best.similarity > 0.9
    assert [c.subject for c in faces[0].candidates] == ["alice", "bob"]
    assert faces[0].box.x_max > faces[0].box.x_min
    assert stranger[0].best is not None
    assert stranger[0].best.similarity < 0.6


async def test_no_face_is_an_empty_answer_or_a_refused_example(
    client: CompreFaceClient,
) -> None:
    blank = encode_jpeg(np.full((80, 80, 3), 90, np.uint8))

    assert await client.recognize(blank) == []
    with pytest.raises(NoFaceFound):
        await client.add_example("alice", blank)


async def test_examples_are_listed_across_pages_and_deleted(
    client: CompreFaceClient,
) -> None:
    image = encode_jpeg(face_image("alice"))
    ids = [await client.add_example("alice", image) for _ in range(3)]
    bob = await client.add_example("bob", encode_jpeg(face_image("bob")))

    everything = await client.list_examples()
    alices = await client.list_examples("alice")
    await client.delete_example(ids[0])
    await client.delete_example(ids[0])  # already gone: not an error
    removed = await client.delete_subject_examples("alice")

    assert {e.image_id for e in everything} == {*ids, bob}
    assert sorted(e.image_id for e in alices) == sorted(ids)
    assert removed == 2
    assert [e.image_id for e in await client.list_examples()] == [bob]


async def test_wrong_key_and_dead_service_are_unavailable() -> None:
    async with servers.recognizer(KEY) as url:
        wrong = CompreFaceClient(url, "not-the-key")
        await wrong.open()
        with pytest.raises(RecognizerUnavailable, match="401"):
            await wrong.recognize(encode_jpeg(face_image("alice")))
        await wrong.close()

    dead = CompreFaceClient(f"http://127.0.0.1:{free_port()}", KEY, timeout_s=1)
    await dead.open()
    with pytest.raises(RecognizerUnavailable):
        await dead.list_examples()
    await dead.close()


@pytest.fixture
async def opened(reference: Reference) -> AsyncIterator[CompreFaceClient]:
    """A client of the ``reference`` server asking for three predictions."""
    client = CompreFaceClient(reference.url, KEY, timeout_s=5, prediction_count=3)
    await client.open()
    yield client
    await client.close()


async def test_a_subject_with_several_examples_is_one_candidate(
    opened: CompreFaceClient,
) -> None:
    for seed in (1, 2, 3):
        await opened.add_example("alice", camera_jpeg("alice", seed))
    await opened.add_example("bob", enrollment_jpeg("bob"))

    [face] = await opened.recognize(camera_jpeg("alice", 9))

    # The server ranks examples: its three best are all alice's.
    [alice] = face.candidates
    assert alice.subject == "alice"
    assert alice.similarity > 0.9


async def test_candidates_are_one_per_subject_best_first(
    opened: CompreFaceClient,
) -> None:
    await opened.add_example("alice", enrollment_jpeg("alice"))
    await opened.add_example("alice", camera_jpeg("alice", 1))
    await opened.add_example("bob", enrollment_jpeg("bob"))
    await opened.add_example("carol", enrollment_jpeg("carol"))

    [face] = await opened.recognize(camera_jpeg("bob", 4))

    subjects = [c.subject for c in face.candidates]
    similarities = [c.similarity for c in face.candidates]
    assert subjects[0] == "bob"
    assert len(subjects) == len(set(subjects))
    assert similarities == sorted(similarities, reverse=True)


async def test_an_overloaded_service_is_a_transient_failure(
    reference: Reference, opened: CompreFaceClient
) -> None:
    reference.faults.update({"fail_next": 1, "status": 503})

    with pytest.raises(RecognizerCallFailed) as failure:
        await opened.list_examples()

    assert failure.value.transient
    assert failure.value.http_status == 503
    assert await opened.list_examples() == []


async def test_a_slow_service_times_out_as_a_transient_failure(
    reference: Reference,
) -> None:
    reference.faults.update({"delay_s": 0.3})
    client = CompreFaceClient(reference.url, KEY, timeout_s=0.05)
    await client.open()

    with pytest.raises(RecognizerCallFailed) as failure:
        await client.list_examples()
    await client.close()

    assert failure.value.transient


async def test_a_wrong_key_is_a_permanent_failure(reference: Reference) -> None:
    client = CompreFaceClient(reference.url, "not-the-key")
    await client.open()

    with pytest.raises(RecognizerKeyRejected) as failure:
        await client.recognize(enrollment_jpeg("alice"))
    await client.close()

    assert not failure.value.transient
    assert failure.value.http_status == 401
    assert "not-the-key" not in str(failure.value)


async def test_a_refused_image_is_a_permanent_failure(
    opened: CompreFaceClient,
) -> None:
    with pytest.raises(RecognizerCallFailed) as failure:
        await opened.recognize(b"certainly not a picture")

    assert not failure.value.transient
    assert failure.value.http_status == 400


async def test_a_dead_service_is_a_transient_failure() -> None:
    dead = CompreFaceClient(f"http://127.0.0.1:{free_port()}", KEY, timeout_s=1)
    await dead.open()

    with pytest.raises(RecognizerCallFailed) as failure:
        await dead.recognize(enrollment_jpeg("alice"))
    await dead.close()

    assert failure.value.transient


async def test_an_unopened_client_fails_permanently() -> None:
    client = CompreFaceClient("http://127.0.0.1:9", KEY)

    with pytest.raises(RecognizerCallFailed) as failure:
        await client.list_examples()

    assert not failure.value.transient
