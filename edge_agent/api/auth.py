"""Controllers: logins, tokens for automation, revocation, accounts."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from edge_agent.api import rendering
from edge_agent.api.keys import services
from edge_agent.clock import to_text
from edge_agent.gateway.context import PRINCIPAL
from edge_agent.gateway.rbac import Permission
from edge_agent.gateway.routing import endpoint
from edge_agent.gateway.validation import parse_json
from edge_agent.models import Role
from edge_agent.services.auth import IssuedToken

routes = web.RouteTableDef()


class Login(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64)
    password: SecretStr = Field(min_length=1, max_length=1024)


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: str = Field(min_length=1, max_length=64)
    role: Role
    ttl_s: int | None = Field(default=None, ge=1)


class Revocation(BaseModel):
    """Revoke one token by its id, or every token of a subject."""

    model_config = ConfigDict(extra="forbid")

    token_id: str | None = Field(default=None, min_length=1, max_length=64)
    subject: str | None = Field(default=None, min_length=1, max_length=64)

    @model_validator(mode="after")
    def _one_target(self) -> Revocation:
        if not (self.token_id or self.subject):
            raise ValueError("name a token_id or a subject")
        return self


class NewAccount(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64)
    password: SecretStr = Field(min_length=1, max_length=1024)
    role: Role


def _token(issued: IssuedToken) -> dict[str, Any]:
    # Field names follow the OAuth 2.0 token response (RFC 6749, 5.1).
    return {
        "access_token": issued.token,
        "token_type": "Bearer",
        "expires_in": issued.expires_in_s,
        "token_id": issued.claims.token_id,
        "expires_at": to_text(issued.claims.expires_at),
    }


@routes.post("/v1/auth/token")
@endpoint(
    "Exchange a username and password for a short-lived access token",
    permission=None,
    body=Login,
    login=True,
)
async def login(request: web.Request) -> web.Response:
    body = await parse_json(request, Login)
    issued = await services(request).auth.login(
        body.username, body.password.get_secret_value()
    )
    return rendering.json_response(_token(issued))


@routes.post("/v1/auth/tokens")
@endpoint(
    "Issue a token for automation",
    permission=Permission.TOKENS_WRITE,
    body=TokenRequest,
    responses=(201,),
)
async def issue_token(request: web.Request) -> web.Response:
    body = await parse_json(request, TokenRequest)
    issued = await services(request).auth.issue_token(
        body.subject, body.role, body.ttl_s, request[PRINCIPAL]
    )
    return rendering.json_response(_token(issued), status=201)


@routes.post("/v1/auth/revocations")
@endpoint(
    "Revoke a token, or every token of a subject",
    permission=Permission.TOKENS_WRITE,
    body=Revocation,
)
async def revoke(request: web.Request) -> web.Response:
    body = await parse_json(request, Revocation)
    auth = services(request).auth
    if body.token_id:
        await auth.revoke_token(body.token_id, request[PRINCIPAL])
    if body.subject:
        await auth.revoke_subject(body.subject, request[PRINCIPAL])
    return rendering.json_response(body.model_dump())


@routes.post("/v1/accounts")
@endpoint(
    "Create an account for a person who signs in",
    permission=Permission.ACCOUNTS_WRITE,
    body=NewAccount,
    responses=(201,),
)
async def create_account(request: web.Request) -> web.Response:
    body = await parse_json(request, NewAccount)
    account = await services(request).auth.create_account(
        body.username, body.password.get_secret_value(), body.role, request[PRINCIPAL]
    )
    answer = {"username": account.username, "role": account.role.value}
    return rendering.json_response(answer, status=201)
