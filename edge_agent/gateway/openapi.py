"""Gateway: the OpenAPI 3.1 document, built from the routes' declared specs.

The same pydantic models that validate requests give the schemas, so the
document cannot drift from what the gateway enforces.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel

from edge_agent import __version__
from edge_agent.gateway.problem_details import PROBLEM_CONTENT_TYPE
from edge_agent.gateway.routing import EndpointSpec, spec_of

_REF = "#/components/schemas/{model}"
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_PROBLEM_SCHEMA = {
    "type": "object",
    "description": "RFC 9457 problem details",
    "properties": {
        "type": {"type": "string", "format": "uri-reference"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "request_id": {"type": "string"},
    },
    "required": ["type", "title", "status", "detail"],
}


def build_openapi(app: web.Application) -> dict[str, Any]:
    schemas: dict[str, Any] = {"Problem": _PROBLEM_SCHEMA}
    paths: dict[str, dict[str, Any]] = {}
    for route in app.router.routes():
        spec = spec_of(route.handler)
        if route.method == "HEAD" or spec is None:
            continue
        path = route.resource.canonical if route.resource else ""
        operation = _operation(spec, path, schemas)
        paths.setdefault(path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "edge-agent", "version": __version__},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
    }


def _operation(
    spec: EndpointSpec, path: str, schemas: dict[str, Any]
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": spec.summary,
        "parameters": _path_parameters(path) + _query_parameters(spec.query, schemas),
        "responses": _responses(spec),
        "security": [] if spec.public else [{"bearer": []}, {"apiKey": []}],
    }
    if spec.permission is not None:
        operation["x-permission"] = spec.permission.value
    body = _request_body(spec, schemas)
    if body is not None:
        operation["requestBody"] = body
    return operation


def _path_parameters(path: str) -> list[dict[str, Any]]:
    names = [part[1:-1] for part in path.split("/") if part.startswith("{")]
    return [
        {"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
        for n in names
    ]


def _query_parameters(
    model: type[BaseModel] | None, schemas: dict[str, Any]
) -> list[dict[str, Any]]:
    if model is None:
        return []
    schema = _schema(model, schemas, register=False)
    required = set(schema.get("required", []))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": prop}
        for name, prop in schema.get("properties", {}).items()
    ]


def _request_body(spec: EndpointSpec, schemas: dict[str, Any]) -> dict[str, Any] | None:
    if spec.image_body:
        binary = {"type": "string", "contentMediaType": "application/octet-stream"}
        content: dict[str, Any] = {
            kind: {"schema": binary} for kind in spec.media_types
        }
        content["multipart/form-data"] = {
            "schema": {"type": "object", "properties": {"file": binary}}
        }
        return {"required": True, "content": content}
    if spec.body is None:
        return None
    reference = {"$ref": _REF.format(model=spec.body.__name__)}
    _schema(spec.body, schemas, register=True)
    return {"required": True, "content": {"application/json": {"schema": reference}}}


def _responses(spec: EndpointSpec) -> dict[str, Any]:
    answers: dict[str, Any] = {
        str(code): {"description": "Success"} for code in spec.responses
    }
    problem = {"content": {PROBLEM_CONTENT_TYPE: {"schema": _PROBLEM_REF}}}
    refusals = {"413": "Body too large", "422": "Invalid input", "500": "Fault"}
    if spec.checks_credentials:
        refusals |= {"401": "Unauthenticated", "429": "Rate limited"}
    if not spec.public:
        refusals["403"] = "Forbidden"
    for code, text in refusals.items():
        answers[code] = {"description": text, **problem}
    return answers


def _schema(
    model: type[BaseModel], schemas: dict[str, Any], register: bool
) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template=_REF)
    schemas.update(schema.pop("$defs", {}))
    if register:
        schemas[model.__name__] = schema
    return schema
