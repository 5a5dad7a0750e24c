"""Schedules: a task type and a fixed input run on a cron expression or a fixed interval, and
the record of every due time a scheduler acted on.

`schedule_runs` holds one row per (schedule, due time): the unique key is what makes several
schedulers safe, as the one whose insert loses to it submits nothing.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from saassy.kit.time import utcnow
from saassy.models.base import Base, RecordMixin


class CatchUp(StrEnum):
    once = "once"  # due times missed while no scheduler ran are made up by one run
    skip = "skip"  # they are skipped: the schedule waits for its next due time


class RunOutcome(StrEnum):
    queued = "queued"  # a task was admitted and queued
    refused = "refused"  # admission refused it (quota, spend cap, plan, a missing secret ...)
    skipped = "skipped"  # the due time was missed and the schedule skips missed runs


class PauseReason(StrEnum):
    """Why a scheduler paused a schedule: whoever it runs as may no longer submit tasks."""

    member_left = "member_left"  # the user is no longer a member (or the account is gone)
    account_disabled = "account_disabled"
    api_key_revoked = "api_key_revoked"
    api_key_expired = "api_key_expired"  # or rotated, and its replacement no longer works


class Schedule(RecordMixin, Base):
    __tablename__ = "schedules"

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(200))
    task_type: Mapped[str] = mapped_column(String(64))
    input: Mapped[Any] = mapped_column(JSON)
    priority: Mapped[int] = mapped_column(default=0)
    timeout_s: Mapped[int | None]
    # Exactly one of the two: a five-field cron expression read in `timezone`, or seconds
    # between runs counted from `anchor_at`.
    cron: Mapped[str | None] = mapped_column(String(200))
    interval_s: Mapped[int | None]
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    anchor_at: Mapped[datetime] = mapped_column(default=utcnow)
    catch_up: Mapped[CatchUp] = mapped_column(String(8), default=CatchUp.once)
    paused: Mapped[bool] = mapped_column(default=False)
    paused_at: Mapped[datetime | None]
    # Set when a scheduler paused it (a person's pause has none); resuming clears it.
    paused_reason: Mapped[PauseReason | None] = mapped_column(String(32))
    # The next due time (also kept while paused: resuming computes it afresh).
    next_run_at: Mapped[datetime]
    last_run_at: Mapped[datetime | None] = mapped_column(doc="The due time last acted on.")
    last_outcome: Mapped[RunOutcome | None] = mapped_column(String(16))
    last_task_id: Mapped[uuid.UUID | None]
    last_refusal_code: Mapped[str | None] = mapped_column(String(64))
    last_refusal_message: Mapped[str | None] = mapped_column(Text)
    last_refused_at: Mapped[datetime | None]
    # Whom its tasks are submitted as: its creator, or whoever resumed it after it was paused
    # because that one could no longer submit tasks. One of the two is set.
    run_as_user_id: Mapped[uuid.UUID | None]
    run_as_api_key_id: Mapped[uuid.UUID | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


# The schedulers' scan: active schedules by due time, without reading the paused ones.
Index("ix_schedules_due", Schedule.paused, Schedule.next_run_at)
# The API's and the dashboard's list: an organization's schedules by keyset.
Index("ix_schedules_org_created", Schedule.organization_id, Schedule.created_at, Schedule.id)


class ScheduleRun(RecordMixin, Base):
    __tablename__ = "schedule_runs"
    __table_args__ = (UniqueConstraint("schedule_id", "due_at"),)

    schedule_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("schedules.id", ondelete="CASCADE"))
    organization_id: Mapped[uuid.UUID] = mapped_column(index=True)
    due_at: Mapped[datetime]
    outcome: Mapped[RunOutcome] = mapped_column(String(16))
    # Earlier due times that passed while no scheduler ran: made up by this run (catch_up
    # "once") or skipped ("skip").
    missed_due_times: Mapped[int] = mapped_column(default=0)
    task_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    refusal_code: Mapped[str | None] = mapped_column(String(64))
    refusal_message: Mapped[str | None] = mapped_column(Text)


# A schedule's history, newest first.
Index("ix_schedule_runs_history", ScheduleRun.schedule_id, ScheduleRun.created_at, ScheduleRun.id)
