"""The operator's catalog from `saassy.toml`: branding, plans and task types."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

from limits import parse as parse_rate_limit
from pydantic import Field, ValidationError, field_validator, model_validator

from saassy.kit.catalog_model import CatalogModel
from saassy.tasks.catalog import (
    ActionName,
    ResourceProfile,
    TaskType,
    TaskTypeName,
    name_task_types_by_key,
)

__all__ = ["ActionName", "Branding", "Catalog", "Plan", "ResourceProfile", "TaskType"]


class Plan(CatalogModel):
    """What a customer buys; `None` means unlimited."""

    not_supported = {"connected_accounts": "connections come later"}

    key: str = ""
    name: str
    description: str = ""
    price_usd_month: Decimal | None = Field(None, ge=0, description="None: custom price")
    tasks_per_month: int | None = Field(None, ge=0)
    # Billed through Stripe's meters when billing is on; None: a task past tasks_per_month is
    # refused, and compute units are not charged.
    overage_usd_per_task: Decimal | None = Field(None, ge=0)
    overage_usd_per_compute_unit: Decimal | None = Field(None, ge=0)
    max_concurrent_tasks: int = Field(1, ge=1)
    max_task_duration_s: int = Field(60, ge=1)
    resources: ResourceProfile = ResourceProfile()
    daily_action_caps: dict[ActionName, int] = Field(default_factory=dict)
    api_rate_limit: str = "60/minute"
    storage_mb: int | None = Field(
        None, ge=0, description="Artifacts kept at once, per organization; None: unlimited."
    )
    retention_days: int | None = Field(
        None, ge=1, description="Artifacts and logs are deleted this long after the task ends."
    )
    public: bool = True

    @field_validator("api_rate_limit")
    @classmethod
    def _valid_rate_limit(cls, value: str) -> str:
        try:
            parse_rate_limit(value)
        except ValueError as exc:
            raise ValueError(f"not a rate limit like '60/minute': {value!r}") from exc
        return value


# What `organizations.plan_overrides` may change: the limits and prices, not the plan's identity.
OVERRIDABLE = frozenset(
    {
        "price_usd_month",
        "tasks_per_month",
        "max_concurrent_tasks",
        "max_task_duration_s",
        "resources",
        "daily_action_caps",
        "api_rate_limit",
        "storage_mb",
        "retention_days",
    }
)


class InvalidOverride(ValueError):
    """A plan override that cannot apply; `key` is the dotted key at fault."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


def apply_overrides(plan: Plan, overrides: Mapping[str, Any]) -> Plan:
    """The plan with per-customer overrides on top.

    `resources` and `daily_action_caps` merge key by key; a cap set to null removes it
    (unlimited). Any other key replaces the plan's value (null: unlimited where allowed).
    """
    unknown = sorted(set(overrides) - OVERRIDABLE)
    if unknown:
        why = Plan.not_supported.get(unknown[0])
        message = f"not supported yet ({why})" if why else "not a plan limit that can be overridden"
        raise InvalidOverride(unknown[0], message)
    merged = plan.model_dump()
    for key, value in overrides.items():
        if key in ("resources", "daily_action_caps") and isinstance(value, Mapping):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    if isinstance(merged["daily_action_caps"], Mapping):
        caps = merged["daily_action_caps"].items()
        merged["daily_action_caps"] = {name: cap for name, cap in caps if cap is not None}
    try:
        return Plan.model_validate(merged)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise InvalidOverride(".".join(str(p) for p in err["loc"]), err["msg"]) from exc


HEX_COLOUR = r"^#[0-9a-fA-F]{6}$"
LOGO_TYPES = {".png": "image/png", ".svg": "image/svg+xml", ".webp": "image/webp"}
# Buttons put white text on the accent colour: WCAG AA asks 4.5:1 for normal text.
MIN_ACCENT_CONTRAST = 4.5


def contrast_with_white(colour: str) -> float:
    """WCAG 2 contrast ratio of `#rrggbb` against white."""

    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    luminance = 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)
    return 1.05 / (luminance + 0.05)


class Feature(CatalogModel):
    title: str = Field(min_length=1, max_length=80)
    text: str = Field(min_length=1, max_length=400)


class Branding(CatalogModel):
    """How the operator's service presents itself on the landing page and in the dashboard."""

    name: str = "Saassy"
    tagline: str = "We run your tasks for you."
    support_email: str = "support@localhost"
    # A PNG, SVG or WebP file beside saassy.toml (or an absolute path), served at /brand/logo.
    logo: str | None = None
    accent_colour: Annotated[str, Field(pattern=HEX_COLOUR)] = "#4338ca"
    # The landing page: a headline, a paragraph, and a few features.
    headline: str = "Your tasks, run in isolated sandboxes."
    pitch: str = (
        "Send a task through the dashboard, the API or the command line; it runs in its own "
        "sandbox, with its logs live and its usage measured to the CPU-second."
    )
    features: list[Feature] = Field(
        default_factory=lambda: [
            Feature(
                title="Isolated",
                text="Every task runs in its own sandbox, with no network "
                "unless its type allows it.",
            ),
            Feature(
                title="Live",
                text="Watch logs arrive as they are printed; download what the task wrote.",
            ),
            Feature(
                title="Measured",
                text="Usage is read from the kernel and shown against your plan as it happens.",
            ),
        ],
        max_length=12,
    )
    # Markdown (no HTML) for /legal/terms and /legal/privacy; empty: the page says so.
    terms: str = ""
    privacy: str = ""

    def logo_path(self, config_dir: Path) -> Path | None:
        """The logo file, relative paths taken from the directory of saassy.toml."""
        if self.logo is None:
            return None
        path = Path(self.logo)
        return path if path.is_absolute() else config_dir / path

    @field_validator("accent_colour")
    @classmethod
    def _readable_on_buttons(cls, colour: str) -> str:
        ratio = contrast_with_white(colour)
        if ratio < MIN_ACCENT_CONTRAST:
            raise ValueError(
                f"{colour} has a contrast of {ratio:.1f}:1 against white button text; "
                f"choose a darker colour (at least {MIN_ACCENT_CONTRAST}:1)"
            )
        return colour


class Catalog(CatalogModel):
    """Validated content of `saassy.toml`."""

    branding: Branding = Branding()
    default_plan: str = "free"
    plans: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,39}$")], Plan]
    task_types: dict[TaskTypeName, TaskType] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _name_plans_by_key(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("plans"), dict):
            data = dict(data)
            data["plans"] = {
                key: {**plan, "key": key} if isinstance(plan, dict) else plan
                for key, plan in data["plans"].items()
            }
        if isinstance(data, dict) and "task_types" in data:
            data = {**data, "task_types": name_task_types_by_key(data["task_types"])}
        return data

    @model_validator(mode="after")
    def _default_plan_exists(self) -> Catalog:
        if self.default_plan not in self.plans:
            raise ValueError(f"default_plan {self.default_plan!r} is not one of the plans")
        return self

    def task_type(self, name: str) -> TaskType | None:
        return self.task_types.get(name)

    def plan(self, key: str) -> Plan:
        """The plan with this key; unknown keys (a plan removed from the file) fall back."""
        return self.plans.get(key) or self.plans[self.default_plan]
