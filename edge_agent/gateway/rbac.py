"""Gateway: the permission matrix, written once; every route names one permission.

| permission        | admin | user | camera |
|-------------------|:-----:|:----:|:------:|
| attendance:read   |   x   |  x   |        |
| frames:push       |   x   |      |   x    |
| users:read        |   x   |      |        |
| users:write       |   x   |      |        |
| cameras:read      |   x   |      |        |
| cameras:write     |   x   |      |        |
| accounts:write    |   x   |      |        |
| tokens:write      |   x   |      |        |
| audit:read        |   x   |      |        |
| metrics:read      |   x   |      |        |
| events:read       |   x   |      |        |
| events:write      |   x   |      |        |
| sync:read         |   x   |      |        |
| sync:write        |   x   |      |        |

``/metrics`` needs metrics:read unless ``auth.open_metrics`` opens it.

A camera may push frames only as itself; that rule needs the frame's camera
id and is enforced by the ingestion service.
"""

from __future__ import annotations

import enum

from edge_agent.models import Role


class Permission(enum.StrEnum):
    ATTENDANCE_READ = "attendance:read"
    FRAMES_PUSH = "frames:push"
    USERS_READ = "users:read"
    USERS_WRITE = "users:write"
    CAMERAS_READ = "cameras:read"
    CAMERAS_WRITE = "cameras:write"
    ACCOUNTS_WRITE = "accounts:write"
    TOKENS_WRITE = "tokens:write"
    AUDIT_READ = "audit:read"
    METRICS_READ = "metrics:read"
    EVENTS_READ = "events:read"
    EVENTS_WRITE = "events:write"
    SYNC_READ = "sync:read"
    SYNC_WRITE = "sync:write"


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.USER: frozenset({Permission.ATTENDANCE_READ}),
    Role.CAMERA: frozenset({Permission.FRAMES_PUSH}),
}


def allows(role: Role, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS[role]
