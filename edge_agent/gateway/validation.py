"""Gateway: parse request bodies and parameters into typed models, or refuse."""

from __future__ import annotations

import json
from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from edge_agent.errors import InvalidInput

ModelT = TypeVar("ModelT", bound=BaseModel)


async def parse_json(request: web.Request, model: type[ModelT]) -> ModelT:
    """Read the JSON body as ``model``; a bad body is a 422 naming each field."""
    try:
        data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"the body is not valid JSON: {exc}") from exc
    return _validate(model, data)


def parse_query(request: web.Request, model: type[ModelT]) -> ModelT:
    return _validate(model, dict(request.query))


def _validate(model: type[ModelT], data: object) -> ModelT:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
            for e in exc.errors()
        ]
        raise InvalidInput("the request has invalid fields", errors=errors) from exc
