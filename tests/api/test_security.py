"""Gateway security over real HTTP: the route x role matrix, tokens, keys,
rate limits, brute-force protection and the audit trail of each act."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import time
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from synthetic_faces import encode_jpeg, face_image

from edge_agent.gateway.rbac import allows
from edge_agent.gateway.routing import spec_of
from edge_agent.models import Direction, Role, local_admin
from tests.api.conftest import Appliance, ApplianceFactory
from tests.support import JPEG

GENEROUS = {
    "camera": {"per_s": 1000, "burst": 1000},
    "user": {"per_s": 1000, "burst": 1000},
}


async def _status(
    appliance: Appliance, method: str, path: str, headers: dict[str, str]
) -> int:
    async with (
        aiohttp.ClientSession(base_url=appliance.url, headers=headers) as session,
        session.request(method, path, json={}) as response,
    ):
        return response.status


async def _credentials(appliance: Appliance) -> dict[str, dict[str, str]]:
    admin = await appliance.token(Role.ADMIN)
    user = await appliance.token(Role.USER, "viewer")
    registered = await appliance.services.cameras.register(
        "gate",
        None,
        Direction.ENTRY,
        local_admin("test"),
    )
    return {
        "none": {},
        "admin": {"Authorization": f"Bearer {admin}"},
        "user": {"Authorization": f"Bearer {user}"},
        "camera": {"X-API-Key": registered.api_key},
    }


def _expected(route_spec: Any, who: str) -> str:
    if route_spec.public:
        return "open"
    if who == "none":
        return "401"
    return "allowed" if allows(Role(who), route_spec.permission) else "403"


async def test_every_route_answers_every_role_as_the_matrix_says(
    make_appliance: ApplianceFactory,
) -> None:
    # Path ids name nothing, so that no request changes what later ones see.
    async with make_appliance(rate_limit=GENEROUS) as appliance:
        credentials = await _credentials(appliance)
        mismatches = []
        for route in appliance.app.router.routes():
            if route.method == "HEAD":
                continue
            spec = spec_of(route.handler)
            assert spec is not None
            canonical = route.resource.canonical  # type: ignore[union-attr]
            path = re.sub(r"\{[a-z_]+\}", "nobody", canonical)
            for who, headers in credentials.items():
                status = await _status(appliance, route.method, path, headers)
                expected = _expected(spec, who)
                got = str(status) if status in (401, 403) else "allowed"
                if expected == "open":
                    expected = "allowed"
                if got != expected:
                    mismatches.append(f"{route.method} {path} as {who}: {status}")

    assert mismatches == []


async def test_a_camera_may_push_only_as_itself(appliance: Appliance) -> None:
    credentials = await _credentials(appliance)
    await appliance.services.cameras.register(
        "other",
        None,
        Direction.ENTRY,
        local_admin("test"),
    )
    camera = credentials["camera"]
    frame = encode_jpeg(face_image("alice"))

    async with appliance.session(**camera) as session:
        async with session.post(
            "/v1/frames", data=frame, headers={**JPEG, "X-Camera-Id": "other"}
        ) as r:
            as_other = r.status
        async with session.post("/v1/frames", data=frame, headers=JPEG) as r:
            as_itself = await r.json()

    assert as_other == 403
    assert as_itself["camera_id"] == "gate"


async def test_unauthenticated_answers_carry_a_bearer_challenge(
    appliance: Appliance,
) -> None:
    async with appliance.session() as session, session.get("/v1/attendance") as r:
        challenge = r.headers["WWW-Authenticate"]
        body = await r.json(content_type=None)

    assert r.status == 401
    assert challenge.startswith("Bearer ")
    assert body["type"].endswith(":unauthenticated")


# --- tokens -----------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forge(header: dict[str, Any], payload: dict[str, Any], key: bytes) -> str:
    signing_input = (
        f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    )
    if header["alg"] == "none":
        return signing_input + "."
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def _claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": "edge-agent",
        "aud": "edge-agent-api",
        "sub": "mallory",
        "role": "admin",
        "kind": "token",
        "jti": "forged",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _secret(tmp_path: Path) -> bytes:
    return (tmp_path / "data" / "jwt-signing.key").read_bytes().strip()


async def _attendance_status(appliance: Appliance, token: str) -> int:
    async with appliance.session(token) as session, session.get("/v1/attendance") as r:
        return r.status


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"exp": int(time.time()) - 3600}, id="expired"),
        pytest.param({"nbf": int(time.time()) + 3600}, id="not-yet-valid"),
        pytest.param({"aud": "someone-else"}, id="wrong-audience"),
        pytest.param({"iss": "evil"}, id="wrong-issuer"),
        pytest.param({"exp": None}, id="no-expiry"),
        pytest.param({"jti": None}, id="no-token-id"),
        pytest.param({"role": "camera"}, id="camera-role"),
    ],
)
async def test_tokens_with_bad_claims_are_refused(
    appliance: Appliance, tmp_path: Path, changes: dict[str, Any]
) -> None:
    token = jwt.encode(_claims(**changes), _secret(tmp_path), "HS256")

    assert await _attendance_status(appliance, token) == 401


async def test_a_correctly_signed_token_is_accepted(
    appliance: Appliance, tmp_path: Path
) -> None:
    token = jwt.encode(_claims(), _secret(tmp_path), "HS256")

    assert await _attendance_status(appliance, token) == 200


async def test_alg_none_and_tampering_are_refused(
    appliance: Appliance, tmp_path: Path
) -> None:
    unsigned = _forge({"alg": "none", "typ": "JWT"}, _claims(), b"")
    user_token = await appliance.token(Role.USER)
    head, _, signature = user_token.split(".")
    promoted = base64.urlsafe_b64encode(json.dumps(_claims(role="admin")).encode())
    tampered = f"{head}.{promoted.rstrip(b'=').decode()}.{signature}"

    assert await _attendance_status(appliance, unsigned) == 401
    assert await _attendance_status(appliance, tampered) == 401


async def test_hs256_signed_with_the_public_key_is_refused_under_rs256(
    make_appliance: ApplianceFactory, tmp_path: Path
) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / "private.pem").write_bytes(private_pem)
    (tmp_path / "public.pem").write_bytes(public_pem)
    auth = {
        "algorithm": "RS256",
        "private_key_file": tmp_path / "private.pem",
        "public_key_file": tmp_path / "public.pem",
    }

    async with make_appliance(auth=auth) as appliance:
        confused = _forge({"alg": "HS256", "typ": "JWT"}, _claims(), public_pem)
        genuine = await appliance.token(Role.USER)

        assert jwt.get_unverified_header(genuine)["alg"] == "RS256"
        assert await _attendance_status(appliance, genuine) == 200
        assert await _attendance_status(appliance, confused) == 401


async def test_revoked_tokens_stop_working(appliance: Appliance) -> None:
    admin = await appliance.token(Role.ADMIN, "root")
    first = await appliance.token(Role.USER, "kiosk-ui")
    second = await appliance.token(Role.USER, "kiosk-ui")
    other = await appliance.token(Role.USER, "reports")
    first_id = jwt.decode(first, options={"verify_signature": False})["jti"]

    async with appliance.session(admin) as session:
        async with session.post(
            "/v1/auth/revocations", json={"token_id": first_id}
        ) as r:
            assert r.status == 200
        by_id = [await _attendance_status(appliance, t) for t in (first, second)]
        async with session.post(
            "/v1/auth/revocations", json={"subject": "kiosk-ui"}
        ) as r:
            assert r.status == 200

    assert by_id == [401, 200]
    assert await _attendance_status(appliance, second) == 401
    assert await _attendance_status(appliance, other) == 200


async def test_login_gives_a_token_that_respects_the_role(appliance: Appliance) -> None:
    admin = await appliance.token(Role.ADMIN)
    account = {"username": "ana", "password": "correct horse battery", "role": "user"}
    async with (
        appliance.session(admin) as session,
        session.post("/v1/accounts", json=account) as r,
    ):
        assert r.status == 201

    login = {"username": "ana", "password": "correct horse battery"}
    async with (
        appliance.session() as session,
        session.post("/v1/auth/token", json=login) as r,
    ):
        token = (await r.json())["access_token"]
    async with appliance.session(token) as session:
        async with session.get("/v1/attendance") as r:
            attendance = r.status
        async with session.get("/v1/users") as r:
            users = r.status
    await appliance.services.auth.set_account_disabled("ana", True, local_admin("t"))

    assert (attendance, users) == (200, 403)
    assert await _attendance_status(appliance, token) == 401


# --- camera keys ------------------------------------------------------------


async def _frame_status(appliance: Appliance, key: str) -> int:
    async with (
        appliance.session(**{"X-API-Key": key}) as session,
        session.post(
            "/v1/frames", data=encode_jpeg(face_image("x")), headers=JPEG
        ) as r,
    ):
        # A repeat of the same bytes is answered 200 with the first frame.
        return 202 if r.status == 200 else r.status


async def test_key_rotation_keeps_the_old_key_for_its_grace(
    appliance: Appliance,
) -> None:
    admin = await appliance.token(Role.ADMIN)
    async with appliance.session(admin) as session:
        async with session.post("/v1/cameras", json={"id": "gate"}) as r:
            first = (await r.json())["api_key"]
        async with session.post("/v1/cameras/gate/keys", json={"grace_s": 600}) as r:
            second = (await r.json())["api_key"]
        during_grace = [await _frame_status(appliance, k) for k in (first, second)]
        async with session.post("/v1/cameras/gate/keys", json={"grace_s": 0}) as r:
            third = (await r.json())["api_key"]
        after = [await _frame_status(appliance, k) for k in (first, second, third)]
        async with session.delete("/v1/cameras/gate/keys") as r:
            assert r.status == 200
        revoked = await _frame_status(appliance, third)

    assert during_grace == [202, 202]
    assert after == [401, 401, 202]
    assert revoked == 401


# --- rate limits --------------------------------------------------------------


async def test_rate_limit_refuses_with_headers_and_recovers(
    make_appliance: ApplianceFactory,
) -> None:
    limits = {"camera": {"per_s": 20, "burst": 2}}
    async with make_appliance(rate_limit=limits) as appliance:
        key = (await _credentials(appliance))["camera"]["X-API-Key"]
        async with appliance.session(**{"X-API-Key": key}) as session:
            statuses, last = [], None
            for _ in range(3):
                async with session.post("/v1/frames", data=b"x", headers=JPEG) as r:
                    statuses.append(r.status)
                    last = r
            assert last is not None
            refused_headers = dict(last.headers)
            await asyncio.sleep(0.2)
            async with session.post("/v1/frames", data=b"x", headers=JPEG) as r:
                recovered = r.status

    assert statuses == [415, 415, 429]
    assert int(refused_headers["Retry-After"]) >= 1
    assert refused_headers["RateLimit-Limit"] == "2"
    assert refused_headers["RateLimit-Remaining"] == "0"
    assert int(refused_headers["RateLimit-Reset"]) >= 1
    assert recovered == 415


async def test_failed_logins_are_limited_per_address(
    make_appliance: ApplianceFactory,
) -> None:
    async with make_appliance(rate_limit={"failed_auth_per_minute": 3}) as appliance:
        await appliance.services.auth.create_account(
            "ana", "correct horse battery", Role.USER, local_admin("t")
        )
        statuses = []
        async with appliance.session() as session:
            for password in ["guess-1", "guess-2", "guess-3", "correct horse battery"]:
                body = {"username": "ana", "password": password}
                async with session.post("/v1/auth/token", json=body) as r:
                    statuses.append(r.status)
                    retry_after = r.headers.get("Retry-After")
        async with (
            appliance.session(**{"X-API-Key": "eak_not-a-key"}) as session,
            session.get("/v1/attendance") as r,
        ):
            key_status = r.status

    assert statuses == [401, 401, 401, 429]
    assert retry_after is not None
    assert key_status == 429


# --- validation, limits, OpenAPI ----------------------------------------------


async def test_every_body_model_refuses_unknown_fields(
    make_appliance: ApplianceFactory,
) -> None:
    async with make_appliance(rate_limit=GENEROUS) as appliance:
        admin = await appliance.token(Role.ADMIN)
        refused = {}
        async with appliance.session(admin) as session:
            for route in appliance.app.router.routes():
                spec = spec_of(route.handler)
                if spec is None or spec.body is None:
                    continue
                canonical = route.resource.canonical  # type: ignore[union-attr]
                path = canonical.replace("{id}", "gate").replace("{stream}", "events")
                async with session.request(
                    route.method, path, json={"surprise": 1}
                ) as r:
                    body = await r.json(content_type=None)
                    fields = [e["field"] for e in body.get("errors", [])]
                    refused[path] = (r.status, "surprise" in fields)

    assert refused
    assert set(refused.values()) == {(422, True)}


async def test_json_bodies_over_the_route_limit_are_refused_unread(
    appliance: Appliance,
) -> None:
    admin = await appliance.token(Role.ADMIN)
    huge = json.dumps({"employee_no": "E1", "name": "x" * 100_000})

    async with (
        appliance.session(admin) as session,
        session.post(
            "/v1/users", data=huge, headers={"Content-Type": "application/json"}
        ) as r,
    ):
        body = await r.json(content_type=None)

    assert r.status == 413
    assert body["type"].endswith(":payload-too-large")


async def test_openapi_describes_every_route(appliance: Appliance) -> None:
    async with appliance.session() as session, session.get("/openapi.json") as r:
        document = await r.json()

    assert document["openapi"].startswith("3.1")
    declared = {
        (route.method.lower(), route.resource.canonical)  # type: ignore[union-attr]
        for route in appliance.app.router.routes()
        if route.method != "HEAD"
    }
    described = {
        (method, path)
        for path, operations in document["paths"].items()
        for method in operations
    }
    assert described == declared
    login = document["paths"]["/v1/auth/token"]["post"]
    assert login["security"] == []
    schema = login["requestBody"]["content"]["application/json"]["schema"]
    assert schema["$ref"].split("/")[-1] in document["components"]["schemas"]


# --- audit trail ------------------------------------------------------------


async def test_security_acts_are_audited(appliance: Appliance) -> None:
    admin = await appliance.token(Role.ADMIN, "root")
    user = await appliance.token(Role.USER, "viewer")
    async with appliance.session(admin) as session:
        async with session.post("/v1/cameras", json={"id": "gate"}):
            pass
        async with session.post("/v1/cameras/gate/keys", json={}):
            pass
        async with session.delete("/v1/cameras/gate/keys"):
            pass
        async with session.post(
            "/v1/users", json={"employee_no": "E1", "name": "A"}
        ) as r:
            person_id = (await r.json())["id"]
        async with session.post(
            f"/v1/users/{person_id}/faces",
            data=encode_jpeg(face_image("a")),
            headers=JPEG,
        ):
            pass
        async with session.post(
            "/v1/accounts",
            json={"username": "ana", "password": "long enough pw", "role": "user"},
        ):
            pass
    async with appliance.session() as session:
        for password in ("wrong password", "long enough pw"):
            body = {"username": "ana", "password": password}
            async with session.post("/v1/auth/token", json=body):
                pass
    async with appliance.session(user) as session, session.get("/v1/users"):
        pass

    async with (
        appliance.session(admin) as session,
        session.get("/v1/audit/logs", params={"limit": 500}) as r,
    ):
        entries = (await r.json())["entries"]

    actions = [e["action"] for e in entries]
    for action in [
        "token.issued",
        "camera.registered",
        "camera_key.created",
        "camera_key.rotated",
        "camera_key.revoked",
        "person.created",
        "face.enrolled",
        "account.created",
        "auth.login_failed",
        "auth.login",
        "request.forbidden",
    ]:
        assert action in actions, action
    denied = next(e for e in entries if e["action"] == "request.forbidden")
    assert denied["actor"] == "token:viewer"
    assert denied["outcome"] == "denied"
    assert denied["source"] == "127.0.0.1"
    assert all("password" not in json.dumps(e) for e in entries)
    report = await appliance.services.audit.verify()
    assert report.ok
    assert report.checked == len(entries)


@pytest.mark.parametrize(
    ("who", "method", "path", "status"),
    [
        pytest.param("camera", "GET", "/v1/users", 403, id="camera-reads-people"),
        pytest.param("camera", "GET", "/v1/attendance", 403, id="camera-reads-marks"),
        pytest.param("user", "GET", "/v1/attendance", 200, id="user-reads-marks"),
        pytest.param("user", "POST", "/v1/frames", 403, id="user-pushes-frames"),
        pytest.param("user", "GET", "/v1/audit/logs", 403, id="user-reads-audit"),
        pytest.param("admin", "GET", "/v1/audit/logs", 200, id="admin-reads-audit"),
        pytest.param("none", "GET", "/healthz", 200, id="health-is-open"),
        pytest.param("none", "GET", "/metrics", 401, id="metrics-closed"),
    ],
)
async def test_the_matrix_in_plain_words(
    appliance: Appliance, who: str, method: str, path: str, status: int
) -> None:
    headers = (await _credentials(appliance))[who]

    assert await _status(appliance, method, path, headers) == status


async def test_open_metrics_can_be_scraped_without_credentials(
    make_appliance: ApplianceFactory,
) -> None:
    async with (
        make_appliance(auth={"open_metrics": True}) as appliance,
        appliance.session() as session,
    ):
        async with session.get("/healthz"):
            pass
        async with session.get("/metrics") as r:
            text = await r.text()

    assert r.status == 200
    assert (
        'edge_http_requests_total{method="GET",route="/healthz",status="200"}' in text
    )


def test_a_route_without_a_declared_endpoint_stops_the_app() -> None:
    from aiohttp import web

    from edge_agent.gateway.routing import check_every_route_declared

    async def undeclared(request: web.Request) -> web.Response:
        return web.Response()

    app = web.Application()
    app.router.add_get("/v1/forgotten", undeclared)

    with pytest.raises(RuntimeError, match="/v1/forgotten"):
        check_every_route_declared(app)


async def test_eddsa_key_pairs_sign_and_verify(
    make_appliance: ApplianceFactory, tmp_path: Path
) -> None:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    private = ed25519.Ed25519PrivateKey.generate()
    (tmp_path / "ed.pem").write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (tmp_path / "ed.pub").write_bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    auth = {
        "algorithm": "EdDSA",
        "private_key_file": tmp_path / "ed.pem",
        "public_key_file": tmp_path / "ed.pub",
    }

    async with make_appliance(auth=auth) as appliance:
        token = await appliance.token(Role.USER)
        hs256 = jwt.encode(_claims(), b"x" * 32, "HS256")

        assert jwt.get_unverified_header(token)["alg"] == "EdDSA"
        assert await _attendance_status(appliance, token) == 200
        assert await _attendance_status(appliance, hs256) == 401
