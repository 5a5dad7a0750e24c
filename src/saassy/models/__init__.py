"""Every ORM model, imported here so alembic and the app see the whole schema."""

from saassy.models.accounts import BrowserSession, MagicLink, RefreshToken, User
from saassy.models.api_keys import ApiKey, ApiKeyScope
from saassy.models.audit import AuditEntry
from saassy.models.base import Base
from saassy.models.billing import (
    BillingCustomer,
    BillingSubscription,
    MeterReport,
    MeterReportStatus,
    PlanChange,
    PlanChangeSource,
    SpendCap,
    StripeCatalogObject,
    StripeEvent,
)
from saassy.models.email import OutboxEmail
from saassy.models.exports import DataExport, ExportStatus
from saassy.models.notifications import NoticeSent, NotificationPreference
from saassy.models.organizations import Invitation, Membership, Organization, Role
from saassy.models.quotas import QuotaCounter, QuotaReservation, ReservationStatus
from saassy.models.schedules import CatchUp, PauseReason, RunOutcome, Schedule, ScheduleRun
from saassy.models.tasks import (
    TERMINAL_STATUSES,
    Artifact,
    AttemptStatus,
    StorageUsageDay,
    Task,
    TaskAttempt,
    TaskLogChunk,
    TaskStatus,
    UsageRecord,
)
from saassy.models.vault import VaultItem, VaultKind
from saassy.models.webhooks import (
    WebhookAttempt,
    WebhookEndpoint,
    WebhookMessage,
    WebhookMessageStatus,
)

__all__ = [
    "TERMINAL_STATUSES",
    "ApiKey",
    "ApiKeyScope",
    "Artifact",
    "AttemptStatus",
    "AuditEntry",
    "Base",
    "BillingCustomer",
    "BillingSubscription",
    "BrowserSession",
    "CatchUp",
    "DataExport",
    "ExportStatus",
    "Invitation",
    "MagicLink",
    "Membership",
    "MeterReport",
    "MeterReportStatus",
    "NoticeSent",
    "NotificationPreference",
    "Organization",
    "OutboxEmail",
    "PauseReason",
    "PlanChange",
    "PlanChangeSource",
    "QuotaCounter",
    "QuotaReservation",
    "RefreshToken",
    "ReservationStatus",
    "Role",
    "RunOutcome",
    "Schedule",
    "ScheduleRun",
    "SpendCap",
    "StorageUsageDay",
    "StripeCatalogObject",
    "StripeEvent",
    "Task",
    "TaskAttempt",
    "TaskLogChunk",
    "TaskStatus",
    "UsageRecord",
    "User",
    "VaultItem",
    "VaultKind",
    "WebhookAttempt",
    "WebhookEndpoint",
    "WebhookMessage",
    "WebhookMessageStatus",
]
