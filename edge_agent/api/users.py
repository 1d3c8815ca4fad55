"""Controllers: people and their face examples (``/v1/users``)."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from edge_agent.api import rendering
from edge_agent.api.keys import services
from edge_agent.api.uploads import read_image
from edge_agent.gateway.context import PRINCIPAL
from edge_agent.gateway.rbac import Permission
from edge_agent.gateway.routing import endpoint
from edge_agent.gateway.validation import parse_json

routes = web.RouteTableDef()


class NewPerson(BaseModel):
    model_config = ConfigDict(extra="forbid")

    employee_no: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    department: str | None = Field(default=None, max_length=200)


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
        body.employee_no, body.name, body.department, request[PRINCIPAL]
    )
    return rendering.json_response(rendering.person(person), status=201)


@routes.get("/v1/users")
@endpoint("List people", permission=Permission.USERS_READ)
async def list_users(request: web.Request) -> web.Response:
    people = await services(request).users.list_people()
    return rendering.json_response({"users": [rendering.person(p) for p in people]})


@routes.get("/v1/users/{id}")
@endpoint("Read a person by id or employee number", permission=Permission.USERS_READ)
async def get_user(request: web.Request) -> web.Response:
    person = await services(request).users.get(request.match_info["id"])
    return rendering.json_response(rendering.person(person))


@routes.post("/v1/users/{id}/faces")
@endpoint(
    "Enroll a face image of a person",
    permission=Permission.USERS_WRITE,
    image_body=True,
    max_body_bytes=None,
    responses=(201,),
)
async def enroll_face(request: web.Request) -> web.Response:
    upload = await read_image(request)
    face = await services(request).users.enroll(
        request.match_info["id"], upload.content, request[PRINCIPAL]
    )
    return rendering.json_response(rendering.face(face), status=201)


@routes.get("/v1/users/{id}/faces")
@endpoint("List a person's face examples", permission=Permission.USERS_READ)
async def list_faces(request: web.Request) -> web.Response:
    faces = await services(request).users.list_faces(request.match_info["id"])
    return rendering.json_response({"faces": [rendering.face(f) for f in faces]})
