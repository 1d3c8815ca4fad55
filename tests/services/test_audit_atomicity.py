"""An act and its audit entry are one commit: when the entry cannot be
written, the act is not stored either."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from edge_agent.app import open_services
from edge_agent.clients.storage.audit import AuditFilter, AuditRepository, Seal
from edge_agent.config import Settings
from edge_agent.errors import NotFound
from edge_agent.models import AuditEntry, Direction, Role, local_admin
from edge_agent.services import Services

ADMIN = local_admin("tester")


class AuditDiskFull(Exception):
    pass


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    """The appliance's services, opened on the default test settings."""
    async with open_services(settings) as opened:
        yield opened


@pytest.fixture
def failing_audit(monkeypatch: pytest.MonkeyPatch) -> None:
    """The audit append fails after the act was written in its transaction."""

    async def append(self: AuditRepository, seal: Seal) -> AuditEntry:
        raise AuditDiskFull("no room for the audit entry")

    monkeypatch.setattr(AuditRepository, "append", append)


@pytest.mark.usefixtures("failing_audit")
async def test_a_camera_whose_audit_entry_fails_is_not_registered(
    services: Services,
) -> None:
    with pytest.raises(AuditDiskFull):
        await services.cameras.register("gate", None, Direction.ENTRY, ADMIN)

    assert await services.cameras.list_cameras() == []


@pytest.mark.usefixtures("failing_audit")
async def test_an_account_whose_audit_entry_fails_is_not_created(
    services: Services,
) -> None:
    with pytest.raises(AuditDiskFull):
        await services.auth.create_account("ana", "a long password", Role.ADMIN, ADMIN)

    with pytest.raises(NotFound, match="no account 'ana'"):
        await services.auth.set_account_disabled("ana", True, ADMIN)


async def test_acts_and_entries_commit_together_when_all_is_well(
    services: Services,
) -> None:
    await services.cameras.register("gate", None, Direction.ENTRY, ADMIN)
    await services.users.create("E1", "Ana", None, ADMIN)

    page = await services.audit.list_entries(AuditFilter(), None, 50)
    actions = [entry.action for entry in page.entries]
    report = await services.audit.verify()

    assert actions[:3] == ["camera.registered", "camera_key.created", "person.created"]
    assert report.ok
