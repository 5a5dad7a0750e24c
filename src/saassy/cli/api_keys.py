"""`saassy api-keys`: the organization's API keys (managed by a logged-in admin, not a key)."""

from __future__ import annotations

import uuid
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from saassy.cli.common import JSON, TEXT, OutputOption, console, errors, fail, print_json
from saassy.cli.connect import ApiKeyOption, ApiUrlOption, api_client

app = typer.Typer(
    help="Create, list and revoke the organization's API keys (log in with your e-mail first).",
    no_args_is_help=True,
)


@app.command()
def create(
    name: Annotated[str, typer.Argument(help="What the key is for, e.g. CI.", show_default=False)],
    output: OutputOption = TEXT,
    api_url: ApiUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Create an API key; it is printed this once, on standard output."""
    with api_client(api_url, api_key) as client:
        created = client.json("POST", "/api/v1/api-keys", json={"name": name})
    if output is JSON:
        print_json(created)
        return
    console.print(created["key"])
    errors.print(
        f"created API key {escape(created['prefix'])}… ({escape(created['name'])}, id "
        f"{created['id']}): store it now, it is not shown again"
    )


@app.command("list")
def list_keys(
    output: OutputOption = TEXT,
    api_url: ApiUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """The organization's API keys: names, prefixes and use (never the keys)."""
    with api_client(api_url, api_key) as client:
        listing = client.pages("/api/v1/api-keys")
    if output is JSON:
        print_json(listing)
        return
    if not listing["items"]:
        console.print("no API keys")
        return
    table = Table(box=None, header_style="bold")
    table.add_column("ID", no_wrap=True, min_width=36)  # whole, to copy into `revoke`
    for column in ("NAME", "PREFIX", "CREATED", "LAST USED", "REVOKED"):
        table.add_column(column, overflow="fold")
    for key in listing["items"]:
        table.add_row(
            key["id"],
            escape(key["name"]),
            escape(key["prefix"]) + "…",
            _day(key["created_at"]),
            _day(key.get("last_used_at")),
            _day(key.get("revoked_at")),
        )
    console.print(table)


@app.command()
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (see list).", show_default=False)],
    api_url: ApiUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Revoke an API key: it stops working on its next request."""
    try:
        checked = uuid.UUID(key_id)
    except ValueError:
        # Not echoed: it may be the key itself, given by mistake.
        fail("not an API key id: give the id from `saassy api-keys list`, not the key")
    with api_client(api_url, api_key) as client:
        client.send("DELETE", f"/api/v1/api-keys/{checked}")
    console.print(f"revoked API key {checked}")


def _day(value: str | None) -> str:
    return value[:10] if value else "-"
