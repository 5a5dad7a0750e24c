"""`saassy api-keys`: the organization's API keys (managed by a logged-in admin, not a key)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from saassy.cli.common import (
    JSON,
    TEXT,
    OutputFormat,
    OutputOption,
    console,
    errors,
    fail,
    print_json,
    print_table,
)
from saassy.cli.connect import ApiKeyOption, ApiUrlOption, api_client

app = typer.Typer(
    help="Create, list, rotate and revoke the organization's API keys (log in with your e-mail "
    "first).",
    no_args_is_help=True,
)

DURATION = re.compile(r"(\d+)([smhd]?)")
UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class Scope(StrEnum):
    # The API's scopes, spelled here so the CLI imports nothing of the server.
    read = "read"
    tasks_write = "tasks:write"
    admin = "admin"


def seconds_of(text: str) -> int:
    """`90`, `90s`, `30m`, `24h` or `7d` in seconds."""
    match = DURATION.fullmatch(text.strip())
    if match is None:
        raise typer.BadParameter("a duration such as 3600, 30m, 24h or 7d")
    return int(match.group(1)) * UNIT_SECONDS[match.group(2)]


def _print_new_key(created: dict[str, Any], output: OutputFormat, verb: str) -> None:
    if output is JSON:
        print_json(created)
        return
    console.print(created["key"])
    expiry = f", expires {created['expires_at']}" if created.get("expires_at") else ""
    errors.print(
        f"{verb} API key {escape(created['prefix'])}… ({escape(created['name'])}, id "
        f"{created['id']}, scopes {' '.join(created['scopes'])}{expiry}): store it now, it is "
        "not shown again"
    )


@app.command()
def create(
    name: Annotated[str, typer.Argument(help="What the key is for, e.g. CI.", show_default=False)],
    scope: Annotated[
        list[Scope] | None,
        typer.Option(
            "--scope",
            help="read, tasks:write or admin (repeatable; admin when none is given).",
            show_default=False,
        ),
    ] = None,
    expires_in: Annotated[
        str | None,
        typer.Option(help="Stop working after this long: 3600, 30m, 24h or 90d.", metavar="TIME"),
    ] = None,
    output: OutputOption = TEXT,
    api_url: ApiUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Create an API key; it is printed this once, on standard output."""
    body: dict[str, Any] = {"name": name}
    if scope:
        body["scopes"] = [s.value for s in scope]
    if expires_in is not None:
        expires = datetime.now(UTC) + timedelta(seconds=seconds_of(expires_in))
        body["expires_at"] = expires.isoformat()
    with api_client(api_url, api_key) as client:
        created = client.json("POST", "/api/v1/api-keys", json=body)
    _print_new_key(created, output, "created")


@app.command()
def rotate(
    key_id: Annotated[str, typer.Argument(help="The key's id (see list).", show_default=False)],
    overlap: Annotated[
        str,
        typer.Option(
            help="How long the old key keeps working: 0, 30m, 24h, up to 30d.", metavar="TIME"
        ),
    ] = "24h",
    output: OutputOption = TEXT,
    api_url: ApiUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Replace an API key: the new key is printed this once; the old one works for the overlap."""
    checked = _key_id(key_id)
    overlap_s = seconds_of(overlap)
    with api_client(api_url, api_key) as client:
        rotated = client.json(
            "POST", f"/api/v1/api-keys/{checked}/rotate", json={"overlap_s": overlap_s}
        )
    _print_new_key(rotated, output, "rotated to")
    if output is not JSON:
        errors.print(
            f"the old key {checked} keeps working until {rotated['replaces']['expires_at']}"
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
    for column in ("NAME", "PREFIX", "SCOPES", "CREATED", "EXPIRES", "LAST USED", "REVOKED"):
        table.add_column(column, overflow="fold")
    for key in listing["items"]:
        expires = _day(key.get("expires_at"))
        if key.get("replaced_by_id") and not key.get("revoked_at"):
            ends = datetime.fromisoformat(key["expires_at"])
            expires = (
                f"rotating until {ends:%Y-%m-%d %H:%M} UTC"
                if ends > datetime.now(UTC)
                else f"rotated {expires}"
            )
        table.add_row(
            key["id"],
            escape(key["name"]),
            escape(key["prefix"]) + "…",
            " ".join(key.get("scopes", [])),
            _day(key["created_at"]),
            expires,
            _day(key.get("last_used_at")),
            _day(key.get("revoked_at")),
        )
    print_table(table)


@app.command()
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (see list).", show_default=False)],
    api_url: ApiUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Revoke an API key: it stops working on its next request."""
    checked = _key_id(key_id)
    with api_client(api_url, api_key) as client:
        client.send("DELETE", f"/api/v1/api-keys/{checked}")
    console.print(f"revoked API key {checked}")


def _key_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        # Not echoed: it may be the key itself, given by mistake.
        fail("not an API key id: give the id from `saassy api-keys list`, not the key")


def _day(value: str | None) -> str:
    return value[:10] if value else "-"
