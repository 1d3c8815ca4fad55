"""The recognizer factory: the configured adapter behind the resilient wrapper."""

from __future__ import annotations

import pytest

from edge_agent.clients.recognition.codeproject import CodeProjectClient
from edge_agent.clients.recognition.compreface import CompreFaceClient
from edge_agent.clients.recognition.factory import build_recognizer
from edge_agent.config import RecognizerSettings
from tests.clients.recognition.support import KEY, Reference


@pytest.mark.parametrize(
    ("kind", "adapter"),
    [("compreface", CompreFaceClient), ("codeproject", CodeProjectClient)],
    ids=["compreface", "codeproject"],
)
def test_the_kind_chooses_the_adapter(kind: str, adapter: type) -> None:
    settings = RecognizerSettings.model_validate({"kind": kind})

    recognizer = build_recognizer(settings)

    assert isinstance(recognizer.inner, adapter)
    assert recognizer.state == "closed"


@pytest.mark.parametrize("kind", ["compreface", "codeproject"])
async def test_the_built_recognizer_speaks_to_its_service(
    reference: Reference, kind: str
) -> None:
    settings = RecognizerSettings.model_validate(
        {"kind": kind, "url": reference.url, "api_key": KEY}
    )
    recognizer = build_recognizer(settings)

    await recognizer.open()
    examples = await recognizer.list_examples()
    await recognizer.close()

    assert examples == []
    assert recognizer.calls == 1
