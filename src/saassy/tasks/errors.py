"""The task domain's errors (all rendered by kit/handlers.py)."""

from __future__ import annotations

from typing import Any

from saassy.kit.errors import Conflict, NotFound, PayloadTooLarge, SaassyError, ValidationFailed


class TaskNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("Task")


class UnknownTaskType(ValidationFailed):
    code = "unknown_task_type"

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(
            f"type: there is no task type {name!r}; see GET /api/v1/task-types.",
            field="type",
            details={"known_types": known},
        )


class TaskTypeUnavailable(ValidationFailed):
    """The type exists but this server cannot run it (its program is not installed here)."""

    code = "task_type_unavailable"

    def __init__(self, name: str) -> None:
        super().__init__(
            f"type: task type {name!r} cannot run on this server: its program is not installed "
            "here; its operator can see why.",
            field="type",
            details={"task_type": name},
        )


class InvalidTaskInput(ValidationFailed):
    code = "invalid_input"


class InputTooLarge(PayloadTooLarge):
    code = "input_too_large"

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"input: {size} bytes as JSON; a task's input may be at most {limit} bytes. "
            "Put large data in storage and pass a reference.",
            field="input",
            details={"size_bytes": size, "limit_bytes": limit},
        )


class TimeoutTooLong(ValidationFailed):
    code = "timeout_too_long"

    def __init__(self, requested: int, maximum: int, task_type: str) -> None:
        super().__init__(
            f"timeout_s: {requested} s is more than task type {task_type!r} allows ({maximum} s).",
            field="timeout_s",
            details={"requested": requested, "maximum": maximum},
        )


class PlanLimitExceeded(SaassyError):
    """The request needs more than the organization's plan allows: upgrading would help."""

    status_code = 402
    code = "plan_limit_exceeded"

    def __init__(self, message: str, *, field: str | None = None, **details: Any) -> None:
        super().__init__(message, field=field, details=details)


class SubscriptionRequired(SaassyError):
    """The task type is for organizations on certain (paid) plans: subscribing would help."""

    status_code = 402
    code = "subscription_required"
    UPGRADE_PATH = "/pricing"

    def __init__(self, task_type: str, required: tuple[str, ...], plan: str) -> None:
        super().__init__(
            f"type: task type {task_type!r} needs a subscription to the "
            f"{' or '.join(required)} plan (this organization is on {plan}); subscribe at "
            f"{self.UPGRADE_PATH}.",
            field="type",
            details={
                "required_plans": list(required),
                "plan": plan,
                "upgrade_url": self.UPGRADE_PATH,
            },
        )


class IdempotencyKeyReused(Conflict):
    code = "idempotency_key_reused"

    def __init__(self, task_id: str) -> None:
        super().__init__(
            "This Idempotency-Key was already used for a different request; "
            "use a new key for a new task.",
            field="Idempotency-Key",
            details={"task_id": task_id},
        )


class TaskFinished(Conflict):
    code = "task_finished"

    def __init__(self, status: str) -> None:
        super().__init__(
            f"The task already ended ({status}); there is nothing to cancel.",
            details={"status": status},
        )
