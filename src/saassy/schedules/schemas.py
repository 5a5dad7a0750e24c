"""Request and response bodies of the schedule endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

from saassy.kit.display_names import no_control_characters, trimmed
from saassy.models import CatchUp, PauseReason, RunOutcome
from saassy.tasks.schemas import MAX_PRIORITY

NEXT_RUNS_SHOWN = 5

CRON_HELP = (
    "Five fields (minute hour day month weekday) read in `timezone`, e.g. '0 9 * * mon-fri'."
)
INTERVAL_HELP = "Seconds between runs, counted from when the cadence was set (at least 60)."
CATCH_UP_HELP = (
    "Due times missed while no scheduler ran: 'once' makes them up with one run, 'skip' skips them."
)

# Checked as every name people give things is: trimmed, not blank, no control characters.
ScheduleName = Annotated[
    str,
    BeforeValidator(trimmed),
    StringConstraints(min_length=1, max_length=200),
    AfterValidator(no_control_characters),
]


class ScheduleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: ScheduleName
    type: str = Field(min_length=1, max_length=64, description="A task type's name.")
    input: Any = Field(default_factory=dict, description="JSON matching the type's input_schema.")
    timeout_s: int | None = Field(
        None, ge=1, description="Default: the type's, capped by the plan."
    )
    priority: int = Field(0, ge=-MAX_PRIORITY, le=MAX_PRIORITY)
    cron: str | None = Field(None, min_length=1, max_length=200, description=CRON_HELP)
    interval_s: int | None = Field(None, description=INTERVAL_HELP)
    timezone: str = Field("UTC", min_length=1, max_length=64, description="An IANA time zone.")
    catch_up: CatchUp = Field(CatchUp.once, description=CATCH_UP_HELP)
    paused: bool = False


class ScheduleUpdate(BaseModel):
    """Only the fields given change; giving `cron` drops `interval_s`, and the other way round."""

    model_config = ConfigDict(extra="forbid")

    name: ScheduleName | None = None
    input: Any = None
    timeout_s: int | None = Field(None, ge=1)
    priority: int | None = Field(None, ge=-MAX_PRIORITY, le=MAX_PRIORITY)
    cron: str | None = Field(None, min_length=1, max_length=200, description=CRON_HELP)
    interval_s: int | None = Field(None, description=INTERVAL_HELP)
    timezone: str | None = Field(None, min_length=1, max_length=64)
    catch_up: CatchUp | None = None


class Refusal(BaseModel):
    """Why admission refused the schedule's last run, and when."""

    code: str
    message: str
    at: datetime


class PausedReason(BaseModel):
    """Why a scheduler paused the schedule: its member or key may no longer submit tasks."""

    code: PauseReason
    message: str


class RunAs(BaseModel):
    """Whom its tasks are submitted as: a member (user) or an API key."""

    user_id: uuid.UUID | None
    api_key_id: uuid.UUID | None


class ScheduleOut(BaseModel):
    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    type: str
    input: Any
    timeout_s: int | None
    priority: int
    cron: str | None
    interval_s: int | None
    timezone: str
    catch_up: CatchUp
    paused: bool
    paused_at: datetime | None = Field(description="When it was paused, while it is.")
    paused_reason: PausedReason | None = Field(
        description="Set when a scheduler paused it; resuming it makes you the one it runs as."
    )
    run_as: RunAs
    next_runs: list[datetime] = Field(
        description=f"The next {NEXT_RUNS_SHOWN} due times (none while paused)."
    )
    last_run_at: datetime | None = Field(description="The due time last acted on.")
    last_outcome: RunOutcome | None = Field(description="What became of it.")
    last_task_id: uuid.UUID | None
    last_refusal: Refusal | None
    created_at: datetime
    updated_at: datetime


class ScheduleRunOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    due_at: datetime
    outcome: RunOutcome
    missed_due_times: int = Field(
        description="Earlier due times missed while no scheduler ran: made up by this run "
        "(catch_up 'once') or skipped."
    )
    task_id: uuid.UUID | None
    refusal_code: str | None
    refusal_message: str | None
    created_at: datetime
