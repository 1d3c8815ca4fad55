"""Attendance over HTTP: the review queue, corrections, the decisions listing,
shifts and the daily report, against the reference recognizer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import numpy as np
from synthetic_faces import encode_jpeg, face_image, stranger_identity

from edge_agent.clock import from_text
from edge_agent.models import Role
from tests.api.conftest import Appliance, ApplianceFactory, decided, read_json
from tests.support import JPEG

# On the camera "vault" nobody clears the match threshold: every match of an
# enrolled face lands in the grey zone. Other cameras keep the defaults.
VAULT_RULES = {
    "cameras": {"vault": {"match_threshold": 0.9999, "unknown_threshold": 0.5}}
}


async def _enroll(api: aiohttp.ClientSession, employee_no: str, identity: str) -> str:
    async with api.post(
        "/v1/users", json={"employee_no": employee_no, "name": identity}
    ) as r:
        person_id: str = (await read_json(r, 201))["id"]
    image = encode_jpeg(face_image(identity))
    async with api.post(f"/v1/users/{person_id}/faces", data=image, headers=JPEG) as r:
        await read_json(r, 201)
    return person_id


async def _camera(api: aiohttp.ClientSession, camera_id: str, direction: str) -> None:
    async with api.post(
        "/v1/cameras", json={"id": camera_id, "direction": direction}
    ) as r:
        await read_json(r, 201)


async def _push(
    api: aiohttp.ClientSession, camera_id: str, identity: str, seed: int
) -> dict[str, Any]:
    """Push a frame of ``identity`` as ``camera_id``; return it once decided."""
    frame = encode_jpeg(face_image(identity, rng=np.random.default_rng(seed)))
    headers = {**JPEG, "X-Camera-Id": camera_id}
    async with api.post("/v1/frames", data=frame, headers=headers) as r:
        accepted = await read_json(r, 202)
    return await decided(api, accepted["frame_id"])


# --- reviews ------------------------------------------------------------------


async def test_a_grey_zone_match_is_reviewed_into_a_mark(
    make_appliance: ApplianceFactory,
) -> None:
    async with (
        make_appliance(attendance=VAULT_RULES) as appliance,
        appliance.session(await appliance.token(Role.ADMIN)) as api,
    ):
        alice = await _enroll(api, "E1", "alice")
        await _camera(api, "vault", "entry")
        frame = await _push(api, "vault", "alice", 1)
        async with api.get("/v1/reviews") as r:
            queue = await read_json(r, 200)
        review_id = queue["reviews"][0]["id"]
        async with api.post(
            f"/v1/reviews/{review_id}", json={"action": "confirm"}
        ) as r:
            confirmed = await read_json(r, 200)
        async with api.post(
            f"/v1/reviews/{review_id}", json={"action": "confirm"}
        ) as r:
            again = r.status
        async with api.get("/v1/attendance", params={"day": "today"}) as r:
            marks = (await read_json(r, 200))["attendance"]
        async with api.get(
            "/v1/audit/logs", params={"action": "attendance.reviewed"}
        ) as r:
            audit = (await read_json(r, 200))["entries"]

    assert [d["outcome"] for d in frame["decisions"]] == ["needs_review"]
    assert queue["next_cursor"] is None
    assert [(r["person_id"], r["state"]) for r in queue["reviews"]] == [
        (alice, "pending")
    ]
    assert confirmed["review"]["state"] == "confirmed"
    assert confirmed["mark"]["kind"] == "check_in"
    assert confirmed["mark"]["source"] == "review"
    assert from_text(confirmed["mark"]["marked_at"]) == from_text(frame["captured_at"])
    assert again == 409
    assert [(m["person_id"], m["source"]) for m in marks] == [(alice, "review")]
    assert [e["target"] for e in audit] == [f"review:{review_id}"]


async def test_reviews_are_rejected_with_a_comment_and_listed_by_state(
    make_appliance: ApplianceFactory,
) -> None:
    async with make_appliance(attendance=VAULT_RULES) as appliance:
        user = await appliance.token(Role.USER, "viewer")
        async with appliance.session(await appliance.token(Role.ADMIN)) as api:
            await _enroll(api, "E1", "alice")
            await _camera(api, "vault", "entry")
            await _push(api, "vault", "alice", 2)
            async with api.get("/v1/reviews") as r:
                review_id = (await read_json(r, 200))["reviews"][0]["id"]
            path = f"/v1/reviews/{review_id}"
            async with api.post(path, json={"action": "reject"}) as r:
                without_comment = await read_json(r, 422)
            async with appliance.session(user) as viewer:
                async with viewer.post(
                    path, json={"action": "reject", "comment": "no"}
                ) as r:
                    as_user = r.status
                async with viewer.get("/v1/reviews") as r:
                    user_reads = r.status
            async with api.post(
                path, json={"action": "reject", "comment": "a visitor"}
            ) as r:
                rejected = await read_json(r, 200)
            async with api.get("/v1/reviews") as r:
                pending = (await read_json(r, 200))["reviews"]
            async with api.get("/v1/reviews", params={"state": "rejected"}) as r:
                settled = (await read_json(r, 200))["reviews"]
            async with api.post("/v1/reviews/999", json={"action": "confirm"}) as r:
                missing = r.status

    assert without_comment["type"].endswith(":invalid-input")
    assert (as_user, user_reads) == (403, 200)
    assert rejected["mark"] is None
    assert rejected["review"]["comment"] == "a visitor"
    assert pending == []
    assert [r["id"] for r in settled] == [review_id]
    assert missing == 404


# --- corrections --------------------------------------------------------------


async def test_corrections_add_and_void_marks_without_rewriting_them(
    api: aiohttp.ClientSession,
) -> None:
    alice = await _enroll(api, "E1", "alice")
    await _camera(api, "gate", "entry")
    pushed = await _push(api, "gate", "alice", 3)
    mark_id = pushed["decisions"][0]["mark"]["id"]
    earlier = (datetime.now(UTC) - timedelta(hours=1)).isoformat()

    async with api.post(
        "/v1/attendance/corrections",
        json={"action": "void", "mark_id": mark_id, "comment": "a colleague"},
    ) as r:
        voided = await read_json(r, 201)
    async with api.post(
        "/v1/attendance/corrections",
        json={
            "action": "add",
            "person_id": "E1",
            "kind": "check_in",
            "at": earlier,
            "comment": "badge reader down",
        },
    ) as r:
        added = await read_json(r, 201)
    async with api.post(
        "/v1/attendance/corrections", json={"action": "void", "mark_id": mark_id}
    ) as r:
        no_comment = r.status
    async with api.get("/v1/attendance") as r:
        counted = (await read_json(r, 200))["attendance"]
    async with api.get("/v1/attendance", params={"include_voided": "true"}) as r:
        everything = (await read_json(r, 200))["attendance"]
    async with api.get("/v1/attendance/corrections", params={"person": "E1"}) as r:
        corrections = (await read_json(r, 200))["corrections"]
    async with api.get(
        "/v1/audit/logs", params={"action": "attendance.corrected"}
    ) as r:
        audit = (await read_json(r, 200))["entries"]

    assert voided["correction"]["action"] == "void"
    assert added["mark"]["manual"] is True
    assert added["mark"]["person_id"] == alice
    assert no_comment == 422
    assert [(m["id"], m["manual"]) for m in counted] == [(added["mark"]["id"], True)]
    assert {(m["id"], m["voided"]) for m in everything} == {
        (mark_id, True),
        (added["mark"]["id"], False),
    }
    assert [c["action"] for c in corrections] == ["void", "add"]
    assert [e["details"]["comment"] for e in audit] == [
        "a colleague",
        "badge reader down",
    ]


# --- decisions ----------------------------------------------------------------


async def test_decisions_are_listed_with_codes_filters_and_a_cursor(
    api: aiohttp.ClientSession,
) -> None:
    await _enroll(api, "E1", "alice")
    await _camera(api, "gate", "entry")
    rng = np.random.default_rng(4)
    for seed in range(2):
        await _push(api, "gate", stranger_identity(rng), 10 + seed)
    await _push(api, "gate", "alice", 5)

    async with api.get(
        "/v1/attendance/decisions",
        params={"reason_code": "below_unknown_threshold", "limit": "1"},
    ) as r:
        first = await read_json(r, 200)
    async with api.get(
        "/v1/attendance/decisions",
        params={
            "reason_code": "below_unknown_threshold",
            "cursor": str(first["next_cursor"]),
        },
    ) as r:
        rest = await read_json(r, 200)
    async with api.get(
        "/v1/attendance/decisions",
        params={"outcome": "marked", "person": "E1", "day": "today", "camera": "gate"},
    ) as r:
        marked = await read_json(r, 200)
    async with api.get(
        "/v1/attendance/decisions", params={"reason_code": "no_such_code"}
    ) as r:
        bad = r.status

    assert len(first["decisions"]) == 1
    assert first["decisions"][0]["outcome"] == "unknown"
    assert first["decisions"][0]["rule"] == "unknown_threshold"
    assert [d["reason_code"] for d in rest["decisions"]] == ["below_unknown_threshold"]
    assert rest["next_cursor"] is None
    [mark] = marked["decisions"]
    assert (mark["reason_code"], mark["person"]["employee_no"]) == ("marked", "E1")
    assert mark["mark"]["kind"] == "check_in"
    assert bad == 422


# --- shifts and the daily report ----------------------------------------------


async def test_the_daily_report_applies_the_shift(appliance: Appliance) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    start = now - timedelta(hours=8, minutes=30)
    end = now - timedelta(minutes=30)
    shift = {
        "name": "early",
        "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
        "start": start.strftime("%H:%M"),
        "end": end.strftime("%H:%M"),
    }
    late_in = (start + timedelta(minutes=20)).isoformat()

    async with appliance.session(await appliance.token(Role.ADMIN)) as api:
        alice = await _enroll(api, "E1", "alice")
        await _camera(api, "exit", "exit")
        async with api.post("/v1/shifts", json=shift) as r:
            created = await read_json(r, 201)
        async with api.put(
            f"/v1/users/{alice}/shift",
            json={"shift": "early", "effective_from": "2020-01-01"},
        ) as r:
            assigned = await read_json(r, 200)
        async with api.post(
            "/v1/attendance/corrections",
            json={
                "action": "add",
                "person_id": alice,
                "kind": "check_in",
                "at": late_in,
                "comment": "forgot to look at the camera",
            },
        ) as r:
            check_in = (await read_json(r, 201))["mark"]
        await _push(api, "exit", "alice", 6)
        async with api.get("/v1/attendance", params={"person": "E1"}) as r:
            out = (await read_json(r, 200))["attendance"][-1]
        work_day = check_in["work_day"]
        async with api.get("/v1/attendance/daily", params={"day": work_day}) as r:
            report = await read_json(r, 200)
        async with api.get("/v1/shifts") as r:
            listed = (await read_json(r, 200))["shifts"]
        async with api.put(
            f"/v1/users/{alice}/shift", json={"shift": "no-such-shift"}
        ) as r:
            unknown_shift = r.status

    assert created["crosses_midnight"] is (end.time() <= start.time())
    assert assigned["shift"] == "early"
    assert check_in["classification"] == "late"
    assert out["classification"] == "on_time"
    assert (out["kind"], out["work_day"]) == ("check_out", work_day)
    [row] = report["people"]
    assert row["status"] == "late"
    assert row["late"] is True
    assert row["manual"] is True
    assert row["missing_check_out"] is False
    worked = from_text(out["marked_at"]) - from_text(check_in["marked_at"])
    assert row["worked_s"] == int(worked.total_seconds())
    assert [s["name"] for s in listed] == ["early"]
    assert unknown_shift == 404


async def test_shift_bodies_are_validated(api: aiohttp.ClientSession) -> None:
    async with api.post(
        "/v1/shifts",
        json={"name": "x", "days": ["someday"], "start": "09:00", "end": "17:00"},
    ) as r:
        bad_day = await read_json(r, 422)
    async with api.post(
        "/v1/shifts",
        json={"name": "x", "days": ["mon"], "start": "09:00", "end": "09:00"},
    ) as r:
        empty = await read_json(r, 422)

    assert "days.0" in [e["field"] for e in bad_day["errors"]]
    assert "differ" in empty["detail"]


async def test_a_manual_mark_raises_attendance_marked_and_travels_to_sync(
    api: aiohttp.ClientSession,
) -> None:
    await _enroll(api, "E7", "gus")
    earlier = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()

    async with api.post(
        "/v1/attendance/corrections",
        json={
            "action": "add",
            "person_id": "E7",
            "kind": "check_in",
            "at": earlier,
            "comment": "forgot the badge",
        },
    ) as r:
        added = await read_json(r, 201)
    async with api.get("/v1/events", params={"type": "attendance.marked"}) as r:
        events = (await read_json(r, 200))["events"]
    async with api.get("/v1/sync/status") as r:
        streams = {s["stream"]: s for s in (await read_json(r, 200))["streams"]}

    assert [e["payload"]["source"] for e in events] == ["manual"]
    assert events[0]["payload"]["mark_id"] == added["mark"]["id"]
    # The mark and its correction, both waiting for a central server.
    assert streams["attendance"]["head"] == 2
    assert streams["attendance"]["state"] == "off"
