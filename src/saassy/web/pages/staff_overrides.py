"""The plan-override form: one field per key the admin API accepts, turned into the same
`overrides` object the API takes (and checked by the same service)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from saassy.plans.catalog import OVERRIDABLE, Plan

Kind = Literal["whole", "decimal", "text", "caps"]
UNLIMITED = "unlimited"


@dataclass(frozen=True)
class OverrideField:
    name: str  # the form field, as the API's error names it: "overrides.resources.cpus"
    path: tuple[str, ...]  # where it goes in `overrides`
    label: str
    kind: Kind
    help: str


FIELDS = [
    OverrideField(
        "overrides.price_usd_month",
        ("price_usd_month",),
        "Price (USD a month)",
        "decimal",
        "'unlimited' means a custom price.",
    ),
    OverrideField(
        "overrides.tasks_per_month",
        ("tasks_per_month",),
        "Tasks a month",
        "whole",
        "A whole number, or 'unlimited'.",
    ),
    OverrideField(
        "overrides.max_concurrent_tasks",
        ("max_concurrent_tasks",),
        "Tasks running at a time",
        "whole",
        "A whole number of at least 1.",
    ),
    OverrideField(
        "overrides.max_task_duration_s",
        ("max_task_duration_s",),
        "Longest task (seconds)",
        "whole",
        "A whole number of at least 1.",
    ),
    OverrideField(
        "overrides.storage_mb",
        ("storage_mb",),
        "Storage (MB)",
        "whole",
        "A whole number, or 'unlimited'.",
    ),
    OverrideField(
        "overrides.retention_days",
        ("retention_days",),
        "Retention (days)",
        "whole",
        "A whole number, or 'unlimited' to keep artifacts.",
    ),
    OverrideField(
        "overrides.api_rate_limit",
        ("api_rate_limit",),
        "API rate limit",
        "text",
        "Like 600/minute.",
    ),
    OverrideField(
        "overrides.resources.memory_mb",
        ("resources", "memory_mb"),
        "Memory (MB)",
        "whole",
        "Per task.",
    ),
    OverrideField(
        "overrides.resources.cpus", ("resources", "cpus"), "CPUs", "decimal", "Per task, e.g. 0.5."
    ),
    OverrideField(
        "overrides.resources.pids", ("resources", "pids"), "Processes", "whole", "Per task."
    ),
    OverrideField(
        "overrides.resources.disk_mb", ("resources", "disk_mb"), "Disk (MB)", "whole", "Per task."
    ),
    OverrideField(
        "overrides.daily_action_caps",
        ("daily_action_caps",),
        "Daily action caps",
        "caps",
        "One per line, like publish = 500; 'unlimited' removes the plan's cap.",
    ),
]
assert {field.path[0] for field in FIELDS} == OVERRIDABLE, "a field per overridable key"


class OverridesInvalid(Exception):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(errors)
        self.errors = errors


def _number(text: str, kind: Kind) -> int | float | None:
    if text.lower() == UNLIMITED:
        return None
    if kind == "whole":
        try:
            return int(text)
        except ValueError:
            raise ValueError("Enter a whole number, or 'unlimited'.") from None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError("Enter a number, or 'unlimited'.") from None
    if not value.is_finite():
        raise ValueError("Enter a number, or 'unlimited'.")
    return int(value) if value == value.to_integral_value() else float(value)


def _caps(text: str) -> dict[str, int | None]:
    caps: dict[str, int | None] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"Write each cap as name = number: {line.strip()[:40]!r}.")
        number = _number(value.strip(), "whole")
        caps[name.strip()] = None if number is None else int(number)
    return caps


def overrides_from_form(values: Mapping[str, str]) -> dict[str, Any]:
    """The `overrides` the form describes; an empty field leaves the plan's value."""
    overrides: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for field in FIELDS:
        text = values.get(field.name, "").strip()
        if not text:
            continue
        try:
            value: Any
            if field.kind == "text":
                value = text
            elif field.kind == "caps":
                value = _caps(text)
            else:
                value = _number(text, field.kind)
        except ValueError as exc:
            errors[field.name] = str(exc)
            continue
        target = overrides
        for key in field.path[:-1]:
            target = target.setdefault(key, {})
        target[field.path[-1]] = value
    if errors:
        raise OverridesInvalid(errors)
    return overrides


def form_values(overrides: Mapping[str, Any]) -> dict[str, str]:
    """The fields as the stored overrides fill them in."""
    values: dict[str, str] = {}
    for field in FIELDS:
        value: Any = overrides
        for key in field.path:
            value = value.get(key, ...) if isinstance(value, Mapping) else ...
        if value is ...:
            continue
        if field.kind == "caps" and isinstance(value, Mapping):
            values[field.name] = "\n".join(
                f"{name} = {UNLIMITED if cap is None else cap}" for name, cap in value.items()
            )
        else:
            values[field.name] = UNLIMITED if value is None else str(value)
    return values


def plan_values(plan: Plan) -> dict[str, str]:
    """The plan's own value of each field, shown as the field's placeholder."""
    return form_values(plan.model_dump(include=set(OVERRIDABLE)))


def field_for_error(key: str) -> str:
    """The form field an API error key ("overrides.daily_action_caps.publish") belongs to."""
    names = {field.name for field in FIELDS} | {"plan"}
    while key and key not in names:
        key = key.rpartition(".")[0]
    return key or "form"
