"""Request and response bodies of the task and task-type endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from saassy.models import TaskStatus
from saassy.tasks.catalog import ResourceProfile, TaskType

MAX_PRIORITY = 100


class TaskTypeOut(BaseModel):
    """What a customer needs to submit a task (the command and image are the operator's)."""

    name: str
    title: str
    description: str
    input_schema: dict[str, Any]
    default_timeout_s: int
    max_timeout_s: int
    retries: int
    resources: ResourceProfile
    network: bool
    actions: list[str]
    secrets: list[str] = Field(description="Secrets the organization must store to submit it.")

    @classmethod
    def of(cls, task_type: TaskType) -> TaskTypeOut:
        return cls(
            name=task_type.name,
            title=task_type.title,
            description=task_type.description,
            input_schema=task_type.input_schema,
            default_timeout_s=task_type.default_timeout_s,
            max_timeout_s=task_type.max_timeout_s,
            retries=task_type.retries,
            resources=task_type.resources,
            network=task_type.network,
            actions=list(task_type.actions),
            secrets=list(task_type.secrets),
        )


class TaskSubmit(BaseModel):
    type: str = Field(min_length=1, max_length=64, description="A task type's name.")
    input: Any = Field(default_factory=dict, description="JSON matching the type's input_schema.")
    timeout_s: int | None = Field(
        None, ge=1, description="Default: the type's default, capped by the plan's maximum."
    )
    priority: int = Field(
        0,
        ge=-MAX_PRIORITY,
        le=MAX_PRIORITY,
        description="Higher runs first among the organization's own queued tasks.",
    )


class Usage(BaseModel):
    cpu_seconds: float = 0.0
    peak_memory_mb: float = 0.0
    wall_seconds: float = 0.0
    metered: dict[str, float] = Field(
        default_factory=dict, description="Actions and custom units the program reported."
    )


class AttemptUsage(BaseModel):
    cpu_seconds: float | None
    peak_memory_mb: float | None
    wall_seconds: float | None


class AttemptOut(BaseModel):
    number: int
    status: str
    exit_code: int | None
    end_reason: str | None
    error: str | None
    started_at: datetime | None
    finished_at: datetime | None
    usage: AttemptUsage


class Progress(BaseModel):
    """The program's latest `{"type": "progress"}` line (see the worker contract)."""

    percent: float | None = Field(description="0-100, when the program gave one.")
    message: str | None
    attempt: int
    updated_at: datetime


class TaskSummary(BaseModel):
    id: uuid.UUID
    type: str
    status: TaskStatus
    priority: int
    timeout_s: int
    attempt_count: int
    max_attempts: int
    # Attempts the platform lost (and ran again); they do not use up `max_attempts`.
    platform_losses: int = 0
    error_code: str | None
    created_at: datetime
    run_after: datetime
    started_at: datetime | None
    finished_at: datetime | None
    cancel_requested_at: datetime | None
    progress: Progress | None = None


class TaskOut(TaskSummary):
    input: Any
    result: Any | None
    error: str | None
    attempts: list[AttemptOut]
    usage: Usage
