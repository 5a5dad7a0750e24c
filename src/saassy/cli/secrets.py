"""`saassy secrets`: the organization's secrets, which tasks receive; values go in, never out."""

from __future__ import annotations

import re
import sys
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from saassy.cli.common import JSON, TEXT, OutputOption, console, errors, fail, print_json
from saassy.cli.connect import ApiKeyOption, ApiUrlOption, api_client
from saassy.cli.task_views import moment

app = typer.Typer(help="Store, list and delete the organization's secrets.", no_args_is_help=True)

# The API's own rule (saassy.tasks.catalog.SECRET_NAME_PATTERN; a test keeps them equal), checked
# here too: the name becomes part of a URL path.
SECRET_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def secret_name(value: str) -> str:
    if not SECRET_NAME.fullmatch(value):
        raise typer.BadParameter("letters, digits and _, not starting with a digit; at most 64")
    return value


NameArgument = Annotated[
    str,
    typer.Argument(
        help="Letters, digits and _, e.g. OPENAI_API_KEY.",
        show_default=False,
        callback=secret_name,
    ),
]


@app.command("set")
def set_secret(
    name: NameArgument,
    value: Annotated[
        str | None,
        typer.Option(
            "--value",
            show_default=False,
            help="The value itself: it lands in shell history; prefer the prompt or stdin.",
        ),
    ] = None,
    output: OutputOption = TEXT,
    api_url: ApiUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Store a secret or replace its value: asked without echo, or read from standard input."""
    if value is None:
        if sys.stdin.isatty():
            value = typer.prompt(f"Value of {name}", hide_input=True)
        else:
            value = sys.stdin.read().removesuffix("\n").removesuffix("\r")
    if not value:
        fail("the value is empty")
    with api_client(api_url, api_key) as client:
        response = client.send("PUT", f"/api/v1/secrets/{name}", json={"value": value})
    if output is JSON:
        print_json(response.json())
        return
    verb = "stored" if response.status_code == 201 else "replaced the value of"
    console.print(f"{verb} secret {escape(name)}")


@app.command("list")
def list_secrets(
    output: OutputOption = TEXT,
    api_url: ApiUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """The organization's secrets: names and times, never values."""
    with api_client(api_url, api_key) as client:
        listing = client.pages("/api/v1/secrets")
    if output is JSON:
        print_json(listing)
        return
    if not listing["items"]:
        console.print("no secrets")
        return
    table = Table(box=None, header_style="bold")
    for column in ("NAME", "CREATED", "UPDATED"):
        table.add_column(column, no_wrap=True)
    for item in listing["items"]:
        table.add_row(escape(item["name"]), moment(item["created_at"]), moment(item["updated_at"]))
    console.print(table)


@app.command()
def delete(
    name: NameArgument,
    api_url: ApiUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Delete a secret; tasks whose type needs it are refused from then on."""
    with api_client(api_url, api_key) as client:
        client.send("DELETE", f"/api/v1/secrets/{name}")
    console.print(f"deleted secret {escape(name)}")
    errors.print("tasks whose type needs it are refused until it is set again")
