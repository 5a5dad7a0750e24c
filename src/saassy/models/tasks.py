"""Tasks, their attempts, the usage ledger, durable logs and artifacts.

The database is the source of truth for the task engine: a broker (later) is only a wake-up
signal. An attempt's `number` fences late writers: a supervisor may only write to the attempt
it holds the lease of, so a resurrected process cannot overwrite a newer attempt's outcome.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from saassy.models.base import Base, RecordMixin


class TaskStatus(StrEnum):
    queued = "queued"
    dispatched = "dispatched"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    timed_out = "timed_out"
    canceled = "canceled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset(
    {TaskStatus.succeeded, TaskStatus.failed, TaskStatus.timed_out, TaskStatus.canceled}
)


class AttemptStatus(StrEnum):
    dispatched = "dispatched"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    timed_out = "timed_out"
    canceled = "canceled"
    lost = "lost"  # its supervisor died; the task was retried or adopted


class Task(RecordMixin, Base):
    __tablename__ = "tasks"
    __table_args__ = (UniqueConstraint("organization_id", "idempotency_key"),)

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    type: Mapped[str] = mapped_column(String(64))
    status: Mapped[TaskStatus] = mapped_column(String(16), default=TaskStatus.queued)
    priority: Mapped[int] = mapped_column(default=0)
    input: Mapped[Any] = mapped_column(JSON)
    result: Mapped[Any | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[str | None] = mapped_column(String(64))
    timeout_s: Mapped[int]
    max_attempts: Mapped[int] = mapped_column(default=1)
    attempt_count: Mapped[int] = mapped_column(default=0)
    platform_losses: Mapped[int] = mapped_column(
        default=0,
        server_default="0",
        doc="Attempts lost to the platform (lease expired, process died); not the task's retries.",
    )
    run_after: Mapped[datetime] = mapped_column(
        doc="Not dispatched before this time (retry backoff)."
    )
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_digest: Mapped[str | None] = mapped_column(String(64))
    quota_reservation_id: Mapped[uuid.UUID | None]
    action_reservations: Mapped[dict[str, str] | None] = mapped_column(
        JSON, doc="Action name -> the id of its daily-cap reservation (settled with the count)."
    )
    submitted_by_user_id: Mapped[uuid.UUID | None]
    submitted_by_api_key_id: Mapped[uuid.UUID | None]
    cancel_requested_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    progress: Mapped[dict[str, Any] | None] = mapped_column(
        JSON, doc="The program's latest progress line: percent, message, attempt, updated_at."
    )


# The dispatcher's claim reads one organization's queued tasks in exactly this order, so its
# cost does not grow with the depth of the queue.
Index(
    "ix_tasks_dispatch",
    Task.status,
    Task.organization_id,
    Task.priority.desc(),
    Task.run_after,
    Task.id,
)


# The task list (API and dashboard) pages an organization's tasks newest first by keyset on
# (created_at, id): with this index page 100 costs what page 1 does, whatever the total.
Index("ix_tasks_org_created", Task.organization_id, Task.created_at, Task.id)


class TaskAttempt(RecordMixin, Base):
    __tablename__ = "task_attempts"
    __table_args__ = (UniqueConstraint("task_id", "number"),)

    task_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    organization_id: Mapped[uuid.UUID] = mapped_column(index=True)
    number: Mapped[int]
    status: Mapped[AttemptStatus] = mapped_column(String(16), default=AttemptStatus.dispatched)
    executor_id: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None] = mapped_column(index=True)
    heartbeat_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    exit_code: Mapped[int | None]
    end_reason: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text)
    cpu_seconds: Mapped[float | None]
    peak_memory_bytes: Mapped[int | None] = mapped_column(BigInteger)
    wall_seconds: Mapped[float | None]


class UsageRecord(RecordMixin, Base):
    """One measured quantity of one attempt; the unique key makes counting it twice impossible."""

    __tablename__ = "usage_records"
    __table_args__ = (
        UniqueConstraint("task_id", "attempt_number", "metric"),
        Index("ix_usage_records_org_time", "organization_id", "recorded_at"),
    )

    organization_id: Mapped[uuid.UUID]
    task_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    task_type: Mapped[str] = mapped_column(String(64))
    attempt_number: Mapped[int]
    metric: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[float]
    recorded_at: Mapped[datetime]


class StorageUsageDay(RecordMixin, Base):
    """One day of an organization's stored artifacts, in GB-months; recorded once per day."""

    __tablename__ = "storage_usage_days"
    __table_args__ = (UniqueConstraint("organization_id", "day"),)

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    day: Mapped[date]
    stored_kib: Mapped[int] = mapped_column(BigInteger)
    gb_months: Mapped[float]


class TaskLogChunk(RecordMixin, Base):
    """Stdout/stderr kept durably, in order, per attempt."""

    __tablename__ = "task_log_chunks"
    __table_args__ = (UniqueConstraint("task_id", "attempt_number", "seq"),)

    task_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    organization_id: Mapped[uuid.UUID]
    attempt_number: Mapped[int]
    seq: Mapped[int]
    stream: Mapped[str] = mapped_column(String(8))
    data: Mapped[str] = mapped_column(Text)


class Artifact(RecordMixin, Base):
    __tablename__ = "artifacts"
    __table_args__ = (UniqueConstraint("task_id", "path"),)

    task_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    organization_id: Mapped[uuid.UUID] = mapped_column(index=True)
    attempt_number: Mapped[int]
    path: Mapped[str] = mapped_column(String(1024))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    content_type: Mapped[str] = mapped_column(String(255))
    storage_key: Mapped[str] = mapped_column(String(1024))
