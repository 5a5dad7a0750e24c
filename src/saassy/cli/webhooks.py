"""`saassy webhooks`: the organization's webhook endpoints through the API: list, create,
delete, send a test event, read the delivery log and send a message again (docs/webhooks.md).
Admins and owners only, so a login rather than an API key."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from saassy.cli.common import (
    JSON,
    TEXT,
    OutputOption,
    console,
    errors,
    fail,
    print_json,
    print_table,
)
from saassy.cli.connect import ApiKeyOption, ApiUrlOption, api_client
from saassy.cli.task_views import moment

ENDPOINTS = "/api/v1/webhooks/endpoints"

app = typer.Typer(
    help="Signed POSTs to your systems when tasks end (through the API).",
    no_args_is_help=True,
)


class EventType(StrEnum):
    """The event types an endpoint may take (a test keeps them equal to the API's)."""

    task_succeeded = "task.succeeded"
    task_failed = "task.failed"
    task_canceled = "task.canceled"
    task_timed_out = "task.timed_out"


EndpointIdArgument = Annotated[str, typer.Argument(help="The endpoint's id.", show_default=False)]


def parse_id(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        fail(f"not {what} id: {value!r}")


def endpoint_path(endpoint_id: str) -> str:
    return f"{ENDPOINTS}/{parse_id(endpoint_id, 'an endpoint')}"


def events_of(endpoint: dict[str, Any]) -> str:
    return ", ".join(endpoint["event_types"]) or "all"


def state_of(endpoint: dict[str, Any]) -> str:
    if endpoint["enabled"]:
        return "enabled"
    reason = endpoint.get("disabled_reason")
    return f"disabled ({reason})" if reason else "disabled"


@app.command("list")
def list_endpoints(
    output: OutputOption = TEXT,
    api_url: ApiUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """The organization's endpoints (never their secrets)."""
    with api_client(api_url, api_key) as client:
        listing = client.pages(ENDPOINTS)
    if output is JSON:
        print_json(listing)
        return
    if not listing["items"]:
        console.print("no webhook endpoints")
        return
    table = Table(box=None, header_style="bold")
    table.add_column("ID", no_wrap=True, min_width=36)
    table.add_column("URL", no_wrap=True)
    for column in ("EVENTS", "STATUS", "DESCRIPTION"):
        table.add_column(column)
    for item in listing["items"]:
        table.add_row(
            item["id"],
            escape(item["url"]),
            events_of(item),
            escape(state_of(item)),
            escape(item["description"]),
        )
    print_table(table)


@app.command()
def create(
    url: Annotated[
        str, typer.Argument(help="Where events are POSTed.", metavar="URL", show_default=False)
    ],
    event: Annotated[
        list[EventType] | None,
        typer.Option("--event", "-e", help="An event type to send (repeat it); none: all."),
    ] = None,
    description: Annotated[str, typer.Option(help="What receives them.")] = "",
    disabled: Annotated[bool, typer.Option("--disabled", help="Create it disabled.")] = False,
    output: OutputOption = TEXT,
    api_url: ApiUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Add an endpoint; its signing secret is printed this once, on standard output."""
    body = {
        "url": url,
        "event_types": [e.value for e in event or []],
        "description": description,
        "enabled": not disabled,
    }
    with api_client(api_url, api_key) as client:
        endpoint = client.json("POST", ENDPOINTS, json=body)
    if output is JSON:
        print_json(endpoint)
        return
    # Only the secret on standard output, as `api-keys create` does, ready for SECRET=$(...).
    console.print(endpoint["secret"])
    errors.print(
        f"created endpoint {endpoint['id']} ({events_of(endpoint)}): its signing secret is "
        "above; store it now, it is not shown again"
    )


@app.command()
def delete(
    endpoint_id: EndpointIdArgument,
    api_url: ApiUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Delete an endpoint and its delivery log; nothing more is sent to it."""
    with api_client(api_url, api_key) as client:
        client.send("DELETE", endpoint_path(endpoint_id))
    console.print(f"deleted endpoint {endpoint_id}")


def _print_message(verb: str, message: dict[str, Any]) -> None:
    console.print(f"{verb}: message {message['id']} ({message['webhook_id']})")


@app.command("test")
def send_test_event(
    endpoint_id: EndpointIdArgument,
    output: OutputOption = TEXT,
    api_url: ApiUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Send the endpoint a webhook.test event; `deliveries` shows how it went."""
    with api_client(api_url, api_key) as client:
        message = client.json("POST", f"{endpoint_path(endpoint_id)}/test")
    if output is JSON:
        print_json(message)
        return
    _print_message("test event queued", message)


@app.command()
def deliveries(
    endpoint_id: EndpointIdArgument,
    limit: Annotated[int, typer.Option(min=1, max=100, help="How many, newest first.")] = 20,
    output: OutputOption = TEXT,
    api_url: ApiUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """The endpoint's delivery log, newest first."""
    with api_client(api_url, api_key) as client:
        listing = client.json(
            "GET", f"{endpoint_path(endpoint_id)}/messages", params={"limit": limit}
        )
    if output is JSON:
        print_json(listing)
        return
    if not listing["items"]:
        console.print("nothing sent yet")
        return
    table = Table(box=None, header_style="bold")
    table.add_column("MESSAGE", no_wrap=True, min_width=36)
    for column in ("EVENT", "STATUS", "ATTEMPTS", "CREATED (UTC)"):
        table.add_column(column, no_wrap=True)
    table.add_column("LAST ERROR")
    for item in listing["items"]:
        table.add_row(
            item["id"],
            escape(item["event_type"]),
            item["status"],
            str(item["attempts"]),
            moment(item["created_at"]),
            escape(item["last_error"] or "-"),
        )
    print_table(table)


@app.command()
def redeliver(
    endpoint_id: EndpointIdArgument,
    message_id: Annotated[str, typer.Argument(help="The message's id.", show_default=False)],
    output: OutputOption = TEXT,
    api_url: ApiUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Send a delivered or failed message again, with the same webhook-id."""
    path = f"{endpoint_path(endpoint_id)}/messages/{parse_id(message_id, 'a message')}/redeliver"
    with api_client(api_url, api_key) as client:
        message = client.json("POST", path)
    if output is JSON:
        print_json(message)
        return
    _print_message("sending again", message)
