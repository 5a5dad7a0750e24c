"""`saassy plans`, `saassy task-types` and `saassy usage`: what is sold, and what is used."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table

from saassy.cli.common import JSON, TEXT, OutputOption, console, print_json
from saassy.cli.connect import ApiKeyOption, ApiUrlOption, api_client
from saassy.cli.task_views import moment


def plans(output: OutputOption = TEXT, api_url: ApiUrlOption = None) -> None:
    """The plans on sale: price, quotas, limits (no login needed)."""
    with api_client(api_url, None, required=False) as client:
        found = client.json("GET", "/api/v1/plans")
    if output is JSON:
        print_json(found)
        return
    table = Table(box=None, header_style="bold")
    table.add_column("PLAN", no_wrap=True, min_width=max((len(p["key"]) for p in found), default=4))
    for column in ("NAME", "PRICE", "TASKS/MONTH", "PARALLEL", "LONGEST", "MEMORY · CPU"):
        table.add_column(column, overflow="fold")
    for plan in found:
        price = plan["price_usd_month"]
        table.add_row(
            escape(plan["key"]),
            escape(plan["name"]),
            "custom" if price is None else f"${float(price):g}/month",
            _limit(plan["tasks_per_month"]),
            str(plan["max_concurrent_tasks"]),
            f"{plan['max_task_duration_s']} s",
            _resources(plan["resources"]),
        )
    console.print(table)


def task_types(output: OutputOption = TEXT, api_url: ApiUrlOption = None) -> None:
    """The task types you can submit, with their limits (no login needed)."""
    with api_client(api_url, None, required=False) as client:
        found = client.json("GET", "/api/v1/task-types")
    if output is JSON:
        print_json(found)
        return
    table = Table(box=None, header_style="bold")
    widest = max((len(t["name"]) for t in found), default=4)
    table.add_column("TYPE", no_wrap=True, min_width=widest)
    for column in ("TITLE", "TIMEOUT", "MEMORY · CPU", "NETWORK", "SECRETS"):
        table.add_column(column, overflow="fold")
    for task_type in found:
        table.add_row(
            escape(task_type["name"]),
            escape(task_type["title"]),
            f"{task_type['default_timeout_s']} s (max {task_type['max_timeout_s']} s)",
            _resources(task_type["resources"]),
            "yes" if task_type["network"] else "no",
            escape(", ".join(task_type["secrets"]) or "-"),
        )
    console.print(table)


def usage(
    output: OutputOption = TEXT, api_url: ApiUrlOption = None, api_key: ApiKeyOption = None
) -> None:
    """This period's quotas (used and left), storage and metered usage of your organization."""
    with api_client(api_url, api_key) as client:
        found = client.json("GET", "/api/v1/usage")
    if output is JSON:
        print_json(found)
        return
    period = found["period"]
    console.print(
        f"plan [bold]{escape(found['plan']['name'])}[/bold] ({escape(found['plan']['key'])}), "
        f"period {moment(period['start'], seconds=False)} to {moment(period['end'], seconds=False)}"
    )
    quotas = Table(box=None, header_style="bold")
    for column in ("QUOTA", "USED", "LIMIT", "LEFT", "RESETS"):
        quotas.add_column(column, overflow="fold")
    for quota in found["quotas"]:
        quotas.add_row(
            escape(quota["metric"]),
            str(quota["used"]),
            _limit(quota["limit"]),
            _limit(quota["remaining"]),
            moment(quota["resets_at"], seconds=False),
        )
    console.print(quotas)
    if storage := found.get("storage"):
        console.print(
            f"storage {storage['used_mb']:.1f} MB of {_limit(storage['limit_mb'])} MB "
            f"({storage['gb_months']:g} GB-months metered)"
        )
    metered = (found.get("metered") or {}).get("items") or []
    if metered:
        table = Table(title="metered", title_justify="left", box=None, header_style="bold")
        for column in ("TYPE", "METRIC", "QUANTITY", "TASKS"):
            table.add_column(column, overflow="fold")
        for item in metered:
            table.add_row(
                escape(item["task_type"]),
                escape(item["metric"]),
                f"{item['quantity']:g}",
                str(item["tasks"]),
            )
        console.print(table)


def _limit(value: int | float | None) -> str:
    return "unlimited" if value is None else f"{value:g}"


def _resources(resources: dict[str, Any]) -> str:
    return f"{resources['memory_mb']} MB · {resources['cpus']:g} CPU"
