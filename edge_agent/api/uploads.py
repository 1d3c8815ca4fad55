"""Controllers: read an uploaded image, sent raw or as multipart form data.

Cameras send the image as the whole body (``Content-Type: image/jpeg``) or
as a form with the image in ``file`` and metadata in other fields; both are
read here, so that every image route accepts both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from aiohttp import web

from edge_agent.clock import parse_capture_time
from edge_agent.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class ImageUpload:
    content: bytes
    fields: dict[str, str] = field(default_factory=dict)

    def value(self, request: web.Request, name: str, header: str) -> str | None:
        """A metadata value from the form, else the header, else the query."""
        found = self.fields.get(name) or request.headers.get(header)
        return found or request.query.get(name)

    def camera_id(self, request: web.Request) -> str | None:
        """The camera the sender names, if it names one."""
        return self.value(request, "camera_id", "X-Camera-Id")

    def captured_at(self, request: web.Request) -> datetime | None:
        """The capture time the sender states; 422 when it cannot be read."""
        captured = self.value(request, "captured_at", "X-Captured-At")
        try:
            return parse_capture_time(captured) if captured else None
        except ValueError as exc:
            raise InvalidInput(
                f"captured_at {captured!r} is neither RFC 3339 nor epoch milliseconds"
            ) from exc


async def read_image(request: web.Request) -> ImageUpload:
    if request.content_type.startswith("multipart/"):
        upload = await _read_form(request)
    else:
        upload = ImageUpload(await request.read())
    if not upload.content:
        raise InvalidInput("the request carries no image")
    return upload


async def _read_form(request: web.Request) -> ImageUpload:
    form = await request.post()
    content = b""
    fields: dict[str, str] = {}
    for name, value in form.items():
        if isinstance(value, web.FileField):
            if not content:
                content = value.file.read()
        else:
            fields[name] = str(value)
    return ImageUpload(content, fields)
