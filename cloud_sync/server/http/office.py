"""Office controllers: site status and attendance across sites (JSON and CSV)."""

from __future__ import annotations

from aiohttp import web

from cloud_sync.server.errors import InvalidRequest
from cloud_sync.server.http.auth import authorize_admin
from cloud_sync.server.http.keys import OFFICE, SITES
from cloud_sync.server.http.rendering import attendance_view, site_status_view
from cloud_sync.server.office import AttendanceFilter, csv_header, csv_line

_DEFAULT_LIMIT = 100


async def get_sites(request: web.Request) -> web.Response:
    authorize_admin(request)
    statuses = await request.app[SITES].status()
    return web.json_response({"sites": [site_status_view(s) for s in statuses]})


async def get_attendance(request: web.Request) -> web.Response:
    authorize_admin(request)
    limit = _int_param(request, "limit", _DEFAULT_LIMIT)
    cursor = request.query.get("cursor") or None
    page = await request.app[OFFICE].attendance_page(_filters(request), cursor, limit)
    return web.json_response(
        {
            "attendance": [attendance_view(row) for row in page.rows],
            "next_cursor": page.next_cursor,
        }
    )


async def get_attendance_csv(request: web.Request) -> web.StreamResponse:
    """Every matching row as CSV, streamed so a long export holds no big buffer."""
    authorize_admin(request)
    filters = _filters(request)
    rows = request.app[OFFICE].iter_attendance(filters)

    response = web.StreamResponse(
        headers={"Content-Disposition": 'attachment; filename="attendance.csv"'}
    )
    response.content_type = "text/csv"
    response.charset = "utf-8"
    await response.prepare(request)
    await response.write(csv_header().encode())
    async for row in rows:
        await response.write(csv_line(row).encode())
    await response.write_eof()
    return response


def _filters(request: web.Request) -> AttendanceFilter:
    query = request.query
    return AttendanceFilter(
        site_id=query.get("site") or None,
        person_id=query.get("person") or None,
        day_from=query.get("from") or None,
        day_to=query.get("to") or None,
    )


def _int_param(request: web.Request, name: str, default: int) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise InvalidRequest(f"{name} must be an integer") from None
