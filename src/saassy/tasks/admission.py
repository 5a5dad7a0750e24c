"""Admission: is this task allowed to run, and take its quota in the same transaction.

Checks, in order: the input against the type's JSON Schema (422 naming the field), its size,
the timeout against the type (422) and the plan (402), the type's resources against the plan
(402); then one unit of the monthly `tasks` quota (or, past it, of overage within the spend
cap: billing/caps) and one unit of each action the type declares are reserved. The caller
inserts the task in the same transaction, so a rollback (or a failed insert inside the same
savepoint) takes the reservations with it.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jsonschema import ValidationError as SchemaViolation
from jsonschema.exceptions import best_match
from sqlalchemy.ext.asyncio import AsyncSession

from saassy.billing.caps.overage import reserve_monthly_task
from saassy.config import Settings
from saassy.plans.catalog import Plan
from saassy.quotas.periods import action_metric
from saassy.quotas.service import reserve_in_plan
from saassy.tasks.catalog import TaskType
from saassy.tasks.errors import InputTooLarge, InvalidTaskInput, PlanLimitExceeded, TimeoutTooLong

MAX_INPUT_BYTES = 256 * 1024
MAX_INPUT_DEPTH = 64


def encoded_input(value: Any) -> bytes:
    """The input as stored and handed to the program: compact JSON."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def nesting_depth(value: Any) -> int:
    """How deeply arrays and objects nest (iteratively: a deep document must not recurse)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            depth += 1
            deepest = max(deepest, depth)
            if depth > MAX_INPUT_DEPTH:
                break
            stack.extend(
                (child, depth) for child in (item.values() if isinstance(item, dict) else item)
            )
    return deepest


def _has_surrogate(text: str) -> bool:
    return any("\ud800" <= char <= "\udfff" for char in text)


def lone_surrogate_at(value: Any) -> str:
    """Where the first string (or key) holding a lone surrogate is, as a field path."""
    stack: list[tuple[Any, list[str]]] = [(value, ["input"])]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str) and _has_surrogate(item):
            return ".".join(path)
        if isinstance(item, dict):
            for key, child in reversed(item.items()):
                if _has_surrogate(key):
                    return ".".join(path)  # a key: the object holding it is at fault
                stack.append((child, [*path, key]))
        elif isinstance(item, list):
            stack.extend((child, [*path, str(i)]) for i, child in reversed(list(enumerate(item))))
    return "input"


def check_input(task_type: TaskType, value: Any) -> None:
    """Shape and size first (validating a huge document is work), then the type's schema."""
    if nesting_depth(value) > MAX_INPUT_DEPTH:
        raise InvalidTaskInput(
            f"input: arrays and objects may nest at most {MAX_INPUT_DEPTH} deep.",
            code="input_too_deep",
            field="input",
        )
    try:
        size = len(encoded_input(value))
    except UnicodeEncodeError:  # JSON's "\ud800" escape decodes to what no UTF-8 text can hold
        field = lone_surrogate_at(value)
        raise InvalidTaskInput(
            f"{field}: holds a lone surrogate (a \\ud800-\\udfff escape without its pair): "
            "it is not valid Unicode text.",
            field=field,
        ) from None
    except ValueError as exc:  # NaN or Infinity: Python's JSON parser accepts them, JSON does not
        raise InvalidTaskInput(
            "input: NaN and Infinity are not JSON numbers.", field="input"
        ) from exc
    if size > MAX_INPUT_BYTES:
        raise InputTooLarge(size, MAX_INPUT_BYTES)
    error = best_match(task_type.input_validator.iter_errors(value))
    if error is not None:
        field = _field_of(error)
        raise InvalidTaskInput(
            f"{field}: {error.message}",
            field=field,
            details={"schema_path": "/".join(str(p) for p in error.absolute_schema_path)},
        )


def _field_of(error: SchemaViolation) -> str:
    path = ["input", *(str(p) for p in error.absolute_path)]
    # A missing property is reported on its parent: name the property itself.
    if error.validator == "required" and isinstance(error.instance, dict):
        required = error.validator_value if isinstance(error.validator_value, list) else []
        missing = [name for name in required if name not in error.instance]
        if missing:
            path.append(str(missing[0]))
    return ".".join(path)


def resolve_timeout(task_type: TaskType, plan: Plan, requested: int | None) -> int:
    """The attempt's timeout: as asked, else the type's default capped by the plan."""
    if requested is None:
        return min(task_type.default_timeout_s, plan.max_task_duration_s)
    if requested > task_type.max_timeout_s:
        raise TimeoutTooLong(requested, task_type.max_timeout_s, task_type.name)
    if requested > plan.max_task_duration_s:
        raise PlanLimitExceeded(
            f"timeout_s: {requested} s is more than the {plan.name} plan allows "
            f"({plan.max_task_duration_s} s); upgrade for longer tasks.",
            field="timeout_s",
            limit="max_task_duration_s",
            requested=requested,
            allowed=plan.max_task_duration_s,
            plan=plan.key,
        )
    return requested


def check_resources(task_type: TaskType, plan: Plan) -> None:
    """The type's resource profile must fit in the plan's."""
    exceeding = task_type.resources.exceeding(plan.resources)
    if exceeding:
        name = exceeding[0]
        requested = getattr(task_type.resources, name)
        allowed = getattr(plan.resources, name)
        raise PlanLimitExceeded(
            f"Task type {task_type.name!r} needs resources.{name} = {requested}; the "
            f"{plan.name} plan allows {allowed}. Upgrade to run it.",
            field="type",
            limit=f"resources.{name}",
            requested=requested,
            allowed=allowed,
            plan=plan.key,
        )


@dataclass(frozen=True)
class Reservations:
    tasks: uuid.UUID
    actions: dict[str, str]  # action name -> reservation id, as stored on the task


async def reserve_for(
    session: AsyncSession,
    settings: Settings,
    plan: Plan,
    organization_id: uuid.UUID,
    task_type: TaskType,
    now: datetime,
) -> Reservations:
    """One monthly task (past the plan as overage, when the organization pays for it) and one
    unit of each declared action, or QuotaExceeded (402)."""
    tasks = await reserve_monthly_task(session, settings, plan, organization_id, now)
    actions: dict[str, str] = {}
    for action in task_type.actions:
        reserved = await reserve_in_plan(
            session, plan, organization_id, action_metric(action), now=now
        )
        actions[action] = str(reserved.reservation_id)
    return Reservations(tasks=tasks, actions=actions)
