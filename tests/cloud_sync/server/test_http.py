"""The central server over HTTP, driven by the site client and by raw requests."""

from __future__ import annotations

import csv
import gzip
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from cloud_sync.client import (
    CentralClient,
    ChainRefused,
    GapRefused,
    PayloadConflict,
    Retryable,
    TooLarge,
    Unauthorized,
)
from cloud_sync.protocol import (
    PROBLEM_CONTENT_TYPE,
    BatchAck,
    Problem,
    ProblemType,
    Stream,
    batch_path,
    idempotency_key,
    problem_type,
)
from cloud_sync.server.http.keys import SITES, STORE
from tests.cloud_sync.conftest import Central
from tests.cloud_sync.helpers import audit_chain, audit_records, record, records, wire

SITE = "site-a"


def _client(central: Central, token: str | None = None) -> CentralClient:
    return CentralClient(central.url, token or central.site_token, timeout_s=5)


async def _post(
    central: Central,
    body: bytes,
    *,
    token: str | None = None,
    site_id: str = SITE,
    stream: str = "events",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """POST a raw body as a batch; gzip, JSON and a key unless ``headers`` say."""
    sent = {
        "Authorization": f"Bearer {token or central.site_token}",
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
        "Idempotency-Key": "k-raw",
        **(headers or {}),
    }
    async with httpx.AsyncClient(base_url=central.url, timeout=5) as http:
        return await http.post(batch_path(site_id, stream), content=body, headers=sent)


def _problem(response: httpx.Response) -> Problem:
    assert response.headers["Content-Type"].startswith(PROBLEM_CONTENT_TYPE)
    return Problem.model_validate_json(response.content)


def _gzip_json(document: Any) -> bytes:
    return gzip.compress(json.dumps(document).encode())


async def test_batches_replays_and_overlaps_end_with_exact_counts(
    central: Central,
) -> None:
    async with _client(central) as client:
        first = await client.send_batch(
            SITE, Stream.EVENTS, records(SITE, Stream.EVENTS, 1, 10), 20
        )
        replay = await client.send_batch(
            SITE, Stream.EVENTS, records(SITE, Stream.EVENTS, 1, 10), 20
        )
        overlap = await client.send_batch(
            SITE, Stream.EVENTS, records(SITE, Stream.EVENTS, 6, 20), 20
        )

    assert (first.acked_seq, replay.acked_seq, overlap.acked_seq) == (10, 10, 20)
    assert first.clock_skew_s is None
    assert await central.server.app[STORE].count_records(SITE, Stream.EVENTS) == 20


async def test_out_of_order_batch_is_refused_with_the_expected_seq(
    central: Central,
) -> None:
    async with _client(central) as client:
        with pytest.raises(GapRefused) as refused:
            await client.send_batch(
                SITE, Stream.EVENTS, records(SITE, Stream.EVENTS, 11, 20), 20
            )
        await client.send_batch(
            SITE, Stream.EVENTS, records(SITE, Stream.EVENTS, 1, 10), 20
        )
        ack = await client.send_batch(
            SITE, Stream.EVENTS, records(SITE, Stream.EVENTS, 11, 20), 20
        )

    assert refused.value.expected_seq == 1
    assert refused.value.problem is not None
    assert refused.value.problem.type == problem_type(ProblemType.SEQUENCE_GAP)
    assert ack.acked_seq == 20


async def test_key_reused_with_other_records_is_answered_422(central: Central) -> None:
    items = records(SITE, Stream.EVENTS, 1, 2)
    async with _client(central) as client:
        await client.send_batch(SITE, Stream.EVENTS, items, 2)
        changed = [record(SITE, Stream.EVENTS, 1, {"edited": True}), items[1]]

        with pytest.raises(PayloadConflict) as refused:
            await client.send_batch(SITE, Stream.EVENTS, changed, 2)

    assert refused.value.status == 422


async def test_token_of_another_site_is_forbidden(central: Central) -> None:
    _, other_token = await central.server.app[SITES].add("site-b")
    async with _client(central, other_token) as client:
        with pytest.raises(Unauthorized) as refused:
            await client.send_batch(
                SITE, Stream.EVENTS, records(SITE, Stream.EVENTS, 1, 1), 1
            )

    assert refused.value.status == 403
    assert refused.value.problem is not None
    assert refused.value.problem.slug == ProblemType.FORBIDDEN


async def test_unknown_token_is_unauthorized(central: Central) -> None:
    async with _client(central, "cs_not-a-token") as client:
        with pytest.raises(Unauthorized) as refused:
            await client.send_batch(
                SITE, Stream.EVENTS, records(SITE, Stream.EVENTS, 1, 1), 1
            )

    assert refused.value.status == 401


async def test_quarantined_records_are_reported_and_acknowledged(
    central: Central,
) -> None:
    document = wire(SITE, Stream.ATTENDANCE, records(SITE, Stream.ATTENDANCE, 1, 3))
    document["records"][1]["payload"] = {"no_person": True}

    response = await _post(central, _gzip_json(document), stream="attendance")

    ack = BatchAck.model_validate_json(response.content)
    assert response.status_code == 200
    assert ack.acked_seq == 3
    assert [q.seq for q in ack.quarantined] == [2]


async def test_bad_audit_record_refuses_the_whole_batch(central: Central) -> None:
    items = audit_records(SITE, audit_chain(3))
    document = wire(SITE, Stream.AUDIT, items)
    document["records"][1]["payload"] = "not an entry"

    response = await _post(central, _gzip_json(document), stream="audit")

    assert response.status_code == 422
    assert _problem(response).slug == ProblemType.INVALID_AUDIT_RECORD


async def test_audit_chain_edit_is_refused_and_shown_in_status(
    central: Central,
) -> None:
    chain = audit_chain(4)
    async with _client(central) as client:
        await client.send_batch(SITE, Stream.AUDIT, audit_records(SITE, chain[:2]), 4)
        chain[3] = {**chain[3], "outcome": "failure"}
        with pytest.raises(ChainRefused):
            await client.send_batch(
                SITE, Stream.AUDIT, audit_records(SITE, chain[2:]), 4
            )

    status = await _office_get(central, "/v1/sites")
    [site] = status.json()["sites"]
    assert site["chain"]["state"] == "broken"
    assert site["chain"]["seq"] == 2
    assert "seq 4" in site["chain"]["problem"]


async def test_gzip_bomb_is_refused_413(central: Central) -> None:
    # 64 MiB of zeros shrink to about 64 KiB: under the body limit on the wire,
    # far over the inflated limit.
    bomb = gzip.compress(b"0" * (64 * 1024 * 1024), compresslevel=9)
    assert len(bomb) < 64 * 1024

    response = await _post(central, bomb)

    assert response.status_code == 413
    assert _problem(response).slug == ProblemType.BODY_TOO_LARGE


async def test_body_over_the_limit_is_refused_413(central: Central) -> None:
    response = await _post(central, b"x" * (65 * 1024))

    assert response.status_code == 413


async def test_too_many_records_raise_too_large(central: Central) -> None:
    async with _client(central) as client:
        with pytest.raises(TooLarge):
            await client.send_batch(
                SITE, Stream.EVENTS, records(SITE, Stream.EVENTS, 1, 1001), 1001
            )


@pytest.mark.parametrize(
    ("body", "headers", "status", "slug"),
    [
        (gzip.compress(b"{not json"), {}, 400, ProblemType.INVALID_JSON),
        (b"not gzip", {}, 400, ProblemType.INVALID_REQUEST),
        (gzip.compress(b'{"a": NaN}'), {}, 400, ProblemType.INVALID_JSON),
        (gzip.compress(b"[" * 100_000), {}, 400, ProblemType.INVALID_JSON),
        (gzip.compress(b"[]"), {}, 422, ProblemType.INVALID_BATCH),
        (b"{}", {"Content-Encoding": "br"}, 415, ProblemType.UNSUPPORTED_MEDIA_TYPE),
        (
            b"{}",
            {"Content-Type": "text/plain"},
            415,
            ProblemType.UNSUPPORTED_MEDIA_TYPE,
        ),
        (b"{}", {"Idempotency-Key": ""}, 400, ProblemType.MISSING_IDEMPOTENCY_KEY),
    ],
    ids=[
        "broken-json",
        "not-gzip",
        "nan",
        "deep-nesting",
        "not-a-batch",
        "unknown-encoding",
        "not-json-type",
        "no-key",
    ],
)
async def test_bad_input_gets_a_problem_never_a_500(
    central: Central,
    body: bytes,
    headers: dict[str, str],
    status: int,
    slug: ProblemType,
) -> None:
    response = await _post(central, body, headers=headers)

    problem = _problem(response)
    assert (response.status_code, problem.slug) == (status, slug)
    assert problem.request_id == response.headers["X-Request-Id"]


@pytest.mark.parametrize(
    ("mutate", "slug"),
    [
        (
            lambda d: d.update(protocol_version=2),
            ProblemType.UNSUPPORTED_PROTOCOL_VERSION,
        ),
        (lambda d: d.update(site_id="site-b"), ProblemType.INVALID_BATCH),
        (lambda d: d["records"].reverse(), ProblemType.INVALID_BATCH),
        (lambda d: d.update(site_head=0), ProblemType.INVALID_BATCH),
        (lambda d: d["records"][0].update(seq="1"), ProblemType.INVALID_BATCH),
    ],
    ids=["version", "site-mismatch", "reversed", "head-behind", "seq-as-text"],
)
async def test_malformed_batches_are_refused(
    central: Central, mutate: Any, slug: ProblemType
) -> None:
    document = wire(SITE, Stream.EVENTS, records(SITE, Stream.EVENTS, 1, 2))
    mutate(document)

    response = await _post(central, _gzip_json(document))

    assert _problem(response).slug == slug


async def test_unknown_stream_and_route_are_problems(central: Central) -> None:
    stream = await _post(central, b"{}", stream="videos")
    async with httpx.AsyncClient(base_url=central.url) as http:
        route = await http.get("/nowhere")
        method = await http.get(batch_path(SITE, "events"))

    assert _problem(stream).slug == ProblemType.NOT_FOUND
    assert _problem(route).slug == ProblemType.NOT_FOUND
    assert (method.status_code, _problem(method).slug) == (
        405,
        ProblemType.METHOD_NOT_ALLOWED,
    )


async def test_clock_skew_beyond_tolerance_is_reported(central: Central) -> None:
    ahead = datetime.now(UTC) + timedelta(hours=2)
    client = CentralClient(central.url, central.site_token, clock=lambda: ahead)
    async with client:
        ack = await client.send_batch(
            SITE, Stream.EVENTS, records(SITE, Stream.EVENTS, 1, 1), 1
        )

    assert ack.clock_skew_s is not None
    assert 7100 < ack.clock_skew_s < 7300


async def test_unreachable_server_is_retryable() -> None:
    async with CentralClient("http://127.0.0.1:9", "cs_x", timeout_s=2) as client:
        with pytest.raises(Retryable):
            await client.send_batch(
                SITE, Stream.EVENTS, records(SITE, Stream.EVENTS, 1, 1), 1
            )


async def test_idempotency_key_is_sent_as_derived(central: Central) -> None:
    items = records(SITE, Stream.EVENTS, 1, 3)
    key = idempotency_key(SITE, Stream.EVENTS, 1, 3)
    document = wire(SITE, Stream.EVENTS, items)
    await _post(central, _gzip_json(document), headers={"Idempotency-Key": key})

    async with _client(central) as client:
        changed = [*items[:2], record(SITE, Stream.EVENTS, 3, {"changed": 1})]
        with pytest.raises(PayloadConflict):
            await client.send_batch(SITE, Stream.EVENTS, changed, 3)


async def _office_get(
    central: Central, path: str, token: str | None = None, **params: Any
) -> httpx.Response:
    # An empty token sends no Authorization header at all.
    bearer = central.admin_token if token is None else token
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    async with httpx.AsyncClient(base_url=central.url) as http:
        return await http.get(path, headers=headers, params=params)


async def test_office_api_needs_the_admin_token(central: Central) -> None:
    as_site = await _office_get(central, "/v1/sites", token=central.site_token)
    without = await _office_get(central, "/v1/attendance", token="")

    assert as_site.status_code == 401
    assert without.status_code == 401
    assert as_site.headers["WWW-Authenticate"] == "Bearer"


async def test_office_reads_status_pages_and_csv(central: Central) -> None:
    async with _client(central) as client:
        await client.send_batch(
            SITE, Stream.ATTENDANCE, records(SITE, Stream.ATTENDANCE, 1, 5), 8
        )

    status = (await _office_get(central, "/v1/sites")).json()["sites"][0]
    page = (await _office_get(central, "/v1/attendance", limit=2)).json()
    rest = await _office_get(
        central, "/v1/attendance", limit=10, cursor=page["next_cursor"]
    )
    exported = await _office_get(central, "/v1/attendance.csv", person="p1")
    bad = await _office_get(central, "/v1/attendance.csv", **{"from": "March"})

    assert status["streams"]["attendance"] == {
        "acked_seq": 5,
        "site_head": 8,
        "lag": 3,
        "updated_at": status["streams"]["attendance"]["updated_at"],
    }
    assert status["last_contact_at"] is not None
    assert [r["seq"] for r in page["attendance"]] == [1, 2]
    assert [r["seq"] for r in rest.json()["attendance"]] == [3, 4, 5]
    assert rest.json()["next_cursor"] is None
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [(r["site_id"], r["seq"], r["person_id"]) for r in rows] == [
        (SITE, "1", "p1"),
        (SITE, "4", "p1"),
    ]
    assert bad.status_code == 400
