"""`saassy schedules`: the organization's schedules through the API: list, create, pause,
resume and delete (docs/schedules.md)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from rich.markup import escape
from rich.table import Table

from saassy.cli.common import JSON, TEXT, OutputOption, console, fail, print_json, print_table
from saassy.cli.connect import ApiKeyOption, ApiUrlOption, api_client
from saassy.cli.task_views import moment
from saassy.cli.tasks import read_input

app = typer.Typer(
    help="Run a task type on a cron expression or an interval (through the API).",
    no_args_is_help=True,
)


class CatchUp(StrEnum):
    """The API's catch_up values (a test keeps them equal)."""

    once = "once"
    skip = "skip"


ScheduleIdArgument = Annotated[str, typer.Argument(help="The schedule's id.", show_default=False)]


def schedule_uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        fail(f"not a schedule id: {value!r}")


def cadence(schedule: dict[str, Any]) -> str:
    if schedule.get("cron"):
        return f"{schedule['cron']} ({schedule['timezone']})"
    return f"every {schedule['interval_s']} s"


def in_zone(value: str, zone: str) -> str:
    """An API time read in the schedule's time zone, `HH:MM Europe/Paris` ("" if UTC)."""
    if zone == "UTC":
        return ""
    try:
        local = datetime.fromisoformat(value).astimezone(ZoneInfo(zone))
    except (ValueError, ZoneInfoNotFoundError):
        return ""
    return f"{local:%Y-%m-%d %H:%M} {zone}"


def next_run(schedule: dict[str, Any], *, local: bool = False) -> str:
    """The next due time in UTC (the table's column says so); `local` adds the UTC mark and,
    for a schedule in another zone, the same time there."""
    if schedule["paused"]:
        # A scheduler's pause says why (its member left, its key was revoked...).
        reason = schedule.get("paused_reason")
        return f"paused ({reason['code']})" if reason else "paused"
    runs = schedule.get("next_runs") or []
    if not runs:
        return "-"
    when = moment(runs[0], seconds=False)
    if not local:
        return when
    there = in_zone(runs[0], schedule.get("timezone") or "UTC")
    return f"{when} UTC ({there})" if there else f"{when} UTC"


def last_refusal(schedule: dict[str, Any]) -> str:
    refusal = schedule.get("last_refusal")
    if not refusal:
        return "-"
    return f"{refusal['code']} at {moment(refusal['at'], seconds=False)} UTC"


@app.command("list")
def list_schedules(
    output: OutputOption = TEXT,
    api_url: ApiUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """The organization's schedules with their next run and last refusal."""
    with api_client(api_url, api_key) as client:
        listing = client.pages("/api/v1/schedules")
    if output is JSON:
        print_json(listing)
        return
    if not listing["items"]:
        console.print("no schedules")
        return
    table = Table(box=None, header_style="bold")
    table.add_column("ID", no_wrap=True, min_width=36)
    for column in ("NAME", "TYPE", "WHEN", "NEXT RUN (UTC)", "LAST REFUSAL"):
        table.add_column(column, no_wrap=column != "NAME")
    for item in listing["items"]:
        table.add_row(
            item["id"],
            escape(item["name"]),
            escape(item["type"]),
            escape(cadence(item)),
            next_run(item),
            escape(last_refusal(item)),
        )
    print_table(table)


@app.command()
def create(
    name: Annotated[str, typer.Argument(help="What to call it.", show_default=False)],
    task_type: Annotated[
        str, typer.Option("--type", "-t", help="A task type, e.g. echo.", show_default=False)
    ],
    cron: Annotated[
        str | None,
        typer.Option(help="Five fields, e.g. '0 9 * * mon-fri' (read in --timezone)."),
    ] = None,
    every: Annotated[
        int | None, typer.Option("--every", min=1, help="Seconds between runs (at least 60).")
    ] = None,
    timezone: Annotated[str, typer.Option(help="An IANA time zone for --cron.")] = "UTC",
    input_: Annotated[
        str | None,
        typer.Option("--input", "-i", help="The input: JSON, @file, or - for standard input."),
    ] = None,
    catch_up: Annotated[
        CatchUp,
        typer.Option(help="Due times missed while the platform was down: one run, or none."),
    ] = CatchUp.once,
    timeout: Annotated[
        int | None, typer.Option("--timeout", min=1, help="Seconds (else the type's default).")
    ] = None,
    paused: Annotated[bool, typer.Option("--paused", help="Create it paused.")] = False,
    output: OutputOption = TEXT,
    api_url: ApiUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Create a schedule: give --cron or --every."""
    if (cron is None) == (every is None):
        fail("give one of --cron and --every", code=2)
    body: dict[str, Any] = {
        "name": name,
        "type": task_type,
        "timezone": timezone,
        "catch_up": catch_up.value,
        "paused": paused,
    }
    if cron is not None:
        body["cron"] = cron
    else:
        body["interval_s"] = every
    if input_ is not None:
        body["input"] = read_input(input_)
    if timeout is not None:
        body["timeout_s"] = timeout
    with api_client(api_url, api_key) as client:
        schedule = client.json("POST", "/api/v1/schedules", json=body)
    if output is JSON:
        print_json(schedule)
        return
    console.print(f"created schedule {schedule['id']} ({escape(cadence(schedule))})")
    console.print(f"next run: {next_run(schedule, local=True)}")


def _act(schedule_id: str, action: str, api_url: str | None, api_key: str | None) -> Any:
    with api_client(api_url, api_key) as client:
        return client.json("POST", f"/api/v1/schedules/{schedule_uuid(schedule_id)}/{action}")


@app.command()
def pause(
    schedule_id: ScheduleIdArgument,
    output: OutputOption = TEXT,
    api_url: ApiUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Stop a schedule from firing until it is resumed."""
    schedule = _act(schedule_id, "pause", api_url, api_key)
    if output is JSON:
        print_json(schedule)
        return
    console.print(f"paused schedule {schedule['id']}")


@app.command()
def resume(
    schedule_id: ScheduleIdArgument,
    output: OutputOption = TEXT,
    api_url: ApiUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Fire a paused schedule again, from its next due time (none is made up)."""
    schedule = _act(schedule_id, "resume", api_url, api_key)
    if output is JSON:
        print_json(schedule)
        return
    console.print(f"resumed schedule {schedule['id']}; next run: {next_run(schedule, local=True)}")


@app.command()
def delete(
    schedule_id: ScheduleIdArgument,
    api_url: ApiUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Delete a schedule and its run history; the tasks it queued stay."""
    with api_client(api_url, api_key) as client:
        client.send("DELETE", f"/api/v1/schedules/{schedule_uuid(schedule_id)}")
    console.print(f"deleted schedule {schedule_id}")
