"""CompreFace client against the reference recognizer, over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import numpy as np
import pytest
from local_services import free_port
from synthetic_faces import encode_jpeg, face_image, stranger_identity

from edge_agent.clients.recognition.compreface import CompreFaceClient
from edge_agent.errors import NoFaceFound, RecognizerUnavailable
from tests import servers

KEY = "client-test-key"


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
