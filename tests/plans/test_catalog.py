"""The plan catalog: what the public sees, a bad saassy.toml, and per-customer overrides."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from saassy.app import create_app
from saassy.config import EXAMPLE_CONFIG, ConfigError, Settings, load_catalog
from saassy.models import Organization
from saassy.plans.catalog import InvalidOverride, apply_overrides
from saassy.plans.service import effective_plan
from tests.conftest import client_for

CATALOG = load_catalog(EXAMPLE_CONFIG)


async def test_plans_are_public_with_a_clean_schema(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/plans")
    assert response.status_code == 200
    plans = {plan["key"]: plan for plan in response.json()}
    assert list(plans) == ["free", "starter", "pro", "enterprise"]
    assert plans["starter"] == {
        "key": "starter",
        "name": "Starter",
        "description": "For individuals with a steady workload.",
        "price_usd_month": 19.0,
        "tasks_per_month": 1000,
        "max_concurrent_tasks": 3,
        "max_task_duration_s": 300,
        "resources": {"memory_mb": 1024, "cpus": 1.0, "pids": 256, "disk_mb": 1024},
        "daily_action_caps": {"publish": 20},
        "api_rate_limit": "300/minute",
    }
    enterprise = plans["enterprise"]
    assert (enterprise["price_usd_month"], enterprise["tasks_per_month"]) == (None, None)


async def test_private_plans_are_not_listed(
    tmp_path: Path, settings_factory: Callable[..., Settings]
) -> None:
    config = tmp_path / "saassy.toml"
    config.write_text(
        EXAMPLE_CONFIG.read_text() + '\n[plans.internal]\nname = "Internal"\npublic = false\n'
    )
    app = create_app(settings_factory(config=config), background=False)
    async with app.router.lifespan_context(app), client_for(app) as client:
        listed = [plan["key"] for plan in (await client.get("/api/v1/plans")).json()]
    assert "internal" in load_catalog(config).plans
    assert listed == ["free", "starter", "pro", "enterprise"]


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (
            ("max_concurrent_tasks = 10", "max_concurrent_tasks = 0"),
            "plans.pro.max_concurrent_tasks",
        ),
        (
            ('api_rate_limit = "300/minute"', 'api_rate_limit = "lots"'),
            "plans.starter.api_rate_limit",
        ),
        (("publish = 5 }", "publish = 'five' }"), "plans.free.daily_action_caps.publish"),
        (('default_plan = "free"', 'default_plan = "gold"'), "(top level)"),
        (
            ("resources = { memory_mb = 512", "resources = { memory_gb = 1"),
            "plans.free.resources.memory_gb",
        ),
        (
            ("overage_usd_per_task = 0.10", "overage_usd_per_task = -0.10"),
            "plans.starter.overage_usd_per_task",
        ),
        (
            ("overage_usd_per_task = 0.05", 'overage_usd_per_compute_unit = "a lot"'),
            "plans.pro.overage_usd_per_compute_unit",
        ),
    ],
)
def test_a_bad_catalog_names_the_file_and_the_dotted_key(
    tmp_path: Path, edit: tuple[str, str], key: str
) -> None:
    original = EXAMPLE_CONFIG.read_text()
    assert edit[0] in original
    config = tmp_path / "saassy.toml"
    config.write_text(original.replace(edit[0], edit[1], 1))
    with pytest.raises(ConfigError) as error:
        load_catalog(config)
    assert str(error.value).startswith(f"{config}: {key}:")


def test_overage_prices_are_exact_decimals_from_the_catalog() -> None:
    plans = CATALOG.plans
    assert plans["starter"].overage_usd_per_task == Decimal("0.10")
    assert plans["pro"].overage_usd_per_task == Decimal("0.05")
    assert plans["free"].overage_usd_per_task is None  # past its tasks: refused
    assert all(plan.overage_usd_per_compute_unit is None for plan in plans.values())


def test_a_catalog_that_is_not_toml_names_the_file(tmp_path: Path) -> None:
    config = tmp_path / "saassy.toml"
    config.write_text("[plans.free\n")
    with pytest.raises(ConfigError, match=f"{config}: not valid TOML"):
        load_catalog(config)


def test_effective_plan_is_the_plan_plus_the_overrides() -> None:
    organization = Organization(
        name="Big Co",
        plan="pro",
        plan_overrides={
            "tasks_per_month": None,
            "daily_action_caps": {"publish": None, "export": 9},
            "api_rate_limit": "5000/minute",
        },
    )
    plan = effective_plan(CATALOG, organization)
    assert (plan.key, plan.name) == ("pro", "Pro")
    assert plan.tasks_per_month is None
    assert plan.daily_action_caps == {"export": 9}
    assert plan.api_rate_limit == "5000/minute"
    assert plan.max_concurrent_tasks == CATALOG.plans["pro"].max_concurrent_tasks


def test_without_overrides_the_plan_is_the_catalogs() -> None:
    organization = Organization(name="Small", plan="starter", plan_overrides={})
    assert effective_plan(CATALOG, organization) is CATALOG.plans["starter"]


def test_a_plan_removed_from_the_catalog_falls_back_to_the_default() -> None:
    organization = Organization(name="Old", plan="legacy", plan_overrides={})
    assert effective_plan(CATALOG, organization).key == CATALOG.default_plan


def test_overrides_cannot_rename_the_plan() -> None:
    with pytest.raises(InvalidOverride) as error:
        apply_overrides(CATALOG.plans["free"], {"name": "Free Forever"})
    assert error.value.key == "name"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("connected_accounts = 1", "plans.free.connected_accounts: not supported yet (connections"),
        ("prise = 3", "plans.free.prise: unknown key (known keys: api_rate_limit,"),
        (
            "max_concurent_tasks = 3",
            "plans.free.max_concurent_tasks: unknown key (did you mean max_concurrent_tasks?)",
        ),
    ],
)
def test_a_key_nothing_honours_is_refused_with_the_reason(
    tmp_path: Path, line: str, message: str
) -> None:
    config = tmp_path / "saassy.toml"
    config.write_text(f'[plans.free]\nname = "Free"\n{line}\n')
    with pytest.raises(ConfigError) as error:
        load_catalog(config)
    assert str(error.value).startswith(f"{config}: {message}")


def test_overrides_of_a_key_nothing_honours_are_refused_with_the_reason() -> None:
    with pytest.raises(InvalidOverride) as error:
        apply_overrides(CATALOG.plans["free"], {"connected_accounts": 3})
    assert (error.value.key, error.value.message) == (
        "connected_accounts",
        "not supported yet (connections come later)",
    )


def test_stored_overrides_of_a_withdrawn_key_leave_the_rest_of_the_contract() -> None:
    organization = Organization(
        name="Old contract",
        plan="pro",
        plan_overrides={"tasks_per_month": 50000, "overage_usd_per_task": 0.01},
    )
    assert effective_plan(CATALOG, organization).tasks_per_month == 50000


def test_storage_and_retention_come_from_the_plan_and_its_overrides() -> None:
    assert (CATALOG.plans["free"].storage_mb, CATALOG.plans["free"].retention_days) == (100, 7)
    assert CATALOG.plans["enterprise"].storage_mb is None  # unlimited
    organization = Organization(
        name="Hoarder", plan="free", plan_overrides={"storage_mb": 500, "retention_days": None}
    )
    plan = effective_plan(CATALOG, organization)
    assert (plan.storage_mb, plan.retention_days) == (500, None)
    with pytest.raises(InvalidOverride, match="retention_days"):
        apply_overrides(CATALOG.plans["free"], {"retention_days": 0})
