"""Controllers: people and their face examples (``/v1/users``).

A person's status changes through ``POST /v1/users/{id}/deactivate`` and
``/activate``, not through ``PATCH``, which takes the person's fields only:
each of those acts is audited as itself. ``DELETE /v1/users/{id}`` erases
the person (see ``services.erasure``); the answer is the tombstone left behind.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from edge_agent.api import rendering
from edge_agent.api.acts import answer_act
from edge_agent.api.keys import services
from edge_agent.api.uploads import read_image
from edge_agent.gateway.context import PRINCIPAL
from edge_agent.gateway.rbac import Permission
from edge_agent.gateway.routing import endpoint
from edge_agent.gateway.validation import parse_json, parse_query
from edge_agent.services.people import (
    MAX_DEPARTMENT_LENGTH,
    MAX_EMPLOYEE_NO_LENGTH,
    MAX_NAME_LENGTH,
    PersonChanges,
    parse_validity,
)

routes = web.RouteTableDef()


def _bound(value: object) -> object:
    """Read a validity bound from JSON text; other values are refused, so that
    a number is never taken for a timestamp."""
    if isinstance(value, str):
        return parse_validity(value)
    if isinstance(value, date) or value is None:
        return value
    raise ValueError("must be YYYY-MM-DD or an RFC 3339 time with an offset")


ValidityBound = Annotated[
    date | datetime,
    BeforeValidator(_bound),
    Field(description="YYYY-MM-DD (a whole site-local day) or RFC 3339 time"),
]


class NewPerson(BaseModel):
    model_config = ConfigDict(extra="forbid")

    employee_no: str = Field(min_length=1, max_length=MAX_EMPLOYEE_NO_LENGTH)
    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH)
    department: str | None = Field(default=None, max_length=MAX_DEPARTMENT_LENGTH)
    valid_from: ValidityBound | None = None
    valid_until: ValidityBound | None = None


class PersonPatch(BaseModel):
    """The fields to change; absent ones keep their value, ``null`` clears
    an optional one. Employee number and name cannot be cleared."""

    model_config = ConfigDict(extra="forbid")

    employee_no: str | None = Field(
        default=None, min_length=1, max_length=MAX_EMPLOYEE_NO_LENGTH
    )
    name: str | None = Field(default=None, min_length=1, max_length=MAX_NAME_LENGTH)
    department: str | None = Field(default=None, max_length=MAX_DEPARTMENT_LENGTH)
    valid_from: ValidityBound | None = None
    valid_until: ValidityBound | None = None

    @field_validator("employee_no", "name")
    @classmethod
    def _not_cleared(cls, value: str | None) -> str:
        # Runs only for fields sent: an absent one keeps its value.
        if value is None:
            raise ValueError("cannot be cleared")
        return value

    def changes(self) -> PersonChanges:
        return PersonChanges(**self.model_dump(include=self.model_fields_set))


class PeopleQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    include_erased: bool = Field(
        default=False, description="list the tombstones of erased people too"
    )


@routes.post("/v1/users")
@endpoint(
    "Create a person",
    permission=Permission.USERS_WRITE,
    body=NewPerson,
    responses=(201,),
)
async def create_user(request: web.Request) -> web.Response:
    body = await parse_json(request, NewPerson)
    person = await services(request).users.create(
        body.employee_no,
        body.name,
        body.department,
        request[PRINCIPAL],
        valid_from=body.valid_from,
        valid_until=body.valid_until,
    )
    return rendering.json_response(rendering.person(person), status=201)


@routes.get("/v1/users")
@endpoint("List people", permission=Permission.USERS_READ, query=PeopleQuery)
async def list_users(request: web.Request) -> web.Response:
    query = parse_query(request, PeopleQuery)
    people = await services(request).users.list_people(
        include_erased=query.include_erased
    )
    return rendering.json_response({"users": [rendering.person(p) for p in people]})


@routes.get("/v1/users/{id}")
@endpoint("Read a person by id or employee number", permission=Permission.USERS_READ)
async def get_user(request: web.Request) -> web.Response:
    person = await services(request).users.get(request.match_info["id"])
    return rendering.json_response(rendering.person(person))


@routes.patch("/v1/users/{id}")
@endpoint(
    "Change some of a person's fields",
    permission=Permission.USERS_WRITE,
    body=PersonPatch,
)
async def update_user(request: web.Request) -> web.Response:
    body = await parse_json(request, PersonPatch)
    person = await services(request).users.update(
        request.match_info["id"], body.changes(), request[PRINCIPAL]
    )
    return rendering.json_response(rendering.person(person))


@routes.post("/v1/users/{id}/deactivate")
@endpoint(
    "Stop marking a person (faces stay enrolled)",
    permission=Permission.USERS_WRITE,
)
async def deactivate_user(request: web.Request) -> web.Response:
    return await answer_act(
        request, services(request).users.deactivate, rendering.person
    )


@routes.post("/v1/users/{id}/activate")
@endpoint("Mark a deactivated person again", permission=Permission.USERS_WRITE)
async def activate_user(request: web.Request) -> web.Response:
    return await answer_act(request, services(request).users.activate, rendering.person)


@routes.delete("/v1/users/{id}")
@endpoint(
    "Erase a person: face data everywhere and personal fields; marks are kept",
    permission=Permission.USERS_WRITE,
)
async def erase_user(request: web.Request) -> web.Response:
    return await answer_act(request, services(request).users.erase, rendering.erasure)


@routes.post("/v1/users/{id}/faces")
@endpoint(
    "Enroll a face image of a person (200 when it was enrolled already)",
    permission=Permission.USERS_WRITE,
    image_body=True,
    max_body_bytes=None,
    responses=(200, 201),
)
async def enroll_face(request: web.Request) -> web.Response:
    upload = await read_image(request)
    enrollment = await services(request).users.enroll(
        request.match_info["id"], upload.content, request[PRINCIPAL]
    )
    status = 201 if enrollment.created else 200
    return rendering.json_response(rendering.face(enrollment.face), status=status)


@routes.get("/v1/users/{id}/faces")
@endpoint("List a person's face examples", permission=Permission.USERS_READ)
async def list_faces(request: web.Request) -> web.Response:
    faces = await services(request).users.list_faces(request.match_info["id"])
    return rendering.json_response({"faces": [rendering.face(f) for f in faces]})


@routes.delete("/v1/users/{id}/faces/{face_id}")
@endpoint(
    "Remove a face example, at the recognizer too",
    permission=Permission.USERS_WRITE,
    responses=(204,),
)
async def remove_face(request: web.Request) -> web.Response:
    await services(request).users.remove_face(
        request.match_info["id"], request.match_info["face_id"], request[PRINCIPAL]
    )
    return web.Response(status=204)
