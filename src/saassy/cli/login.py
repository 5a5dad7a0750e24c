"""`saassy login` and `saassy logout`: the credential every client command then uses."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from saassy.cli import credentials as store
from saassy.cli.common import console, errors, fail, waiting
from saassy.cli.connect import check_api_key, stored_credentials
from saassy.cli.credentials import DEFAULT_API_URL, Credentials

if TYPE_CHECKING:
    from saassy.cli.client import ApiClient


def login(
    api_url: Annotated[
        str,
        typer.Option("--api-url", envvar="SAASSY_API_URL", help="The Saassy API's address."),
    ] = DEFAULT_API_URL,
    email: Annotated[
        str | None, typer.Option(help="Your e-mail address (else asked).", show_default=False)
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            show_default=False,
            help="Log in with an API key (sk_...) instead; it lands in shell history, "
            "prefer --api-key-stdin.",
        ),
    ] = None,
    api_key_stdin: Annotated[
        bool, typer.Option("--api-key-stdin", help="Read an API key from standard input.")
    ] = False,
) -> None:
    """Log in with your e-mail and password, or an API key; later commands use it."""
    from saassy.cli.client import ApiClient

    if api_key is not None and api_key_stdin:
        fail("give either --api-key or --api-key-stdin, not both")
    if api_key_stdin:
        api_key = sys.stdin.readline().strip()
    if api_key is not None:
        check_api_key(api_key)
        credentials = Credentials(api_url.rstrip("/"), "api_key", api_key=api_key)
        with _reporting(ApiClient(credentials.api_url, credentials, waiting=waiting)) as client:
            client.send("GET", "/api/v1/usage")  # the key works, before it is stored
        who = f"with API key {api_key[:7]}…"
    else:
        address = email or typer.prompt("E-mail")
        if password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        else:
            password = typer.prompt("Password", hide_input=True)
        with _reporting(ApiClient(api_url, waiting=waiting)) as client:
            signed_in = client.json(
                "POST", "/api/v1/auth/login", json={"email": address, "password": password}
            )
        credentials = Credentials(
            api_url.rstrip("/"),
            "session",
            access_token=signed_in["access_token"],
            refresh_token=signed_in["refresh_token"],
            expires_at=time.time() + float(signed_in["expires_in"]),
            email=signed_in["user"]["email"],
        )
        who = f"as {signed_in['user']['email']}"
    try:
        path = store.save(credentials)
    except OSError as exc:
        fail(f"cannot store the credentials: {exc}")
    console.print(f"logged in to {escape(credentials.api_url)} {escape(who)}")
    errors.print(f"credentials stored in {escape(str(path))} (readable by you only)")
    if os.environ.get("SAASSY_API_KEY"):
        errors.print("note: SAASSY_API_KEY is set, and commands use it over this login")


def logout() -> None:
    """End the stored session on the server and forget the stored credential."""
    from saassy.cli.client import ApiClient, ApiError, ApiUnreachable

    credentials = stored_credentials()
    if credentials is None:
        console.print("not logged in")
        return
    if credentials.kind == "session":
        try:
            with ApiClient(credentials.api_url, waiting=waiting) as client:
                body = {"refresh_token": credentials.refresh_token}
                client.send("POST", "/api/v1/auth/logout", json=body)
        except (ApiError, ApiUnreachable) as exc:
            errors.print(f"warning: the server did not end the session ({escape(str(exc))})")
    store.delete()
    console.print(f"logged out of {escape(credentials.api_url)}")
    if credentials.kind == "api_key":
        errors.print("the API key itself still works: revoke it with `saassy api-keys revoke`")


@contextmanager
def _reporting(client: ApiClient) -> Iterator[ApiClient]:
    """The client, its failures as one clean line (a wrong password: in the API's words)."""
    from saassy.cli.client import ApiError, ApiUnreachable

    try:
        with client:
            yield client
    except ApiError as exc:
        fail(f"{exc.code}: {exc.message}")
    except ApiUnreachable as exc:
        fail(str(exc))
