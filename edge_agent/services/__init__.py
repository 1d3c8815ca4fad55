"""Services: business logic, no HTTP and no SQL. Clients arrive by constructor."""

from __future__ import annotations

from dataclasses import dataclass

from edge_agent.services.attendance import AttendanceService
from edge_agent.services.audit import AuditService
from edge_agent.services.auth import AuthService
from edge_agent.services.cameras import CameraService
from edge_agent.services.corrections import CorrectionService
from edge_agent.services.events import EventService
from edge_agent.services.gauges import GaugeService
from edge_agent.services.health import HealthService
from edge_agent.services.ingestion import IngestionService
from edge_agent.services.reviews import ReviewService
from edge_agent.services.shifts import ShiftService
from edge_agent.services.status import StatusService
from edge_agent.services.streams import StreamService
from edge_agent.services.sync import SyncService
from edge_agent.services.users import UserService


@dataclass(frozen=True, slots=True)
class Services:
    """Every service of one running appliance, built by the composition root."""

    users: UserService
    cameras: CameraService
    attendance: AttendanceService
    ingestion: IngestionService
    auth: AuthService
    audit: AuditService
    health: HealthService
    streams: StreamService
    shifts: ShiftService
    reviews: ReviewService
    corrections: CorrectionService
    events: EventService
    sync: SyncService
    status: StatusService
    gauges: GaugeService
