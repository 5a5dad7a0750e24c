"""Which API a client command calls, with which credential, and its failures as clean lines.

--api-key (or SAASSY_API_KEY) wins over the stored login; --api-url (or SAASSY_API_URL) over the
stored address. A stored credential is sent only to the address it was stored for.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from saassy.cli import credentials as store
from saassy.cli.common import errors, fail, waiting
from saassy.cli.credentials import DEFAULT_API_URL, Credentials, CredentialsUnreadable

if TYPE_CHECKING:
    # httpx is imported once a command calls the API, not for --help or a usage error.
    from saassy.cli.client import ApiClient, ApiError

EXIT_INTERRUPTED = 130

ApiUrlOption = Annotated[
    str | None,
    typer.Option(
        "--api-url",
        envvar="SAASSY_API_URL",
        show_default=False,
        help="The Saassy API's address "
        f"\\[default: the one you logged in to, else {DEFAULT_API_URL}].",
    ),
]
ApiKeyOption = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="SAASSY_API_KEY",
        show_default=False,
        help="An API key (sk_...) instead of your login; prefer the SAASSY_API_KEY variable, "
        "out of shell history.",
    ),
]


def same_api(one: str, other: str) -> bool:
    return one.rstrip("/") == other.rstrip("/")


def stored_credentials() -> Credentials | None:
    try:
        return store.load()
    except CredentialsUnreadable as exc:
        fail(str(exc))


def check_api_key(api_key: str) -> None:
    if not (api_key.isascii() and api_key.isprintable()) or " " in api_key or not api_key:
        fail("the API key is malformed (expected sk_...); check --api-key or SAASSY_API_KEY")


def resolve(
    api_url: str | None, api_key: str | None, *, required: bool = True
) -> tuple[str, Credentials | None]:
    """The API's address and the credential for it (None only when not `required`)."""
    stored = stored_credentials()
    if api_key:  # an empty SAASSY_API_KEY is no key
        check_api_key(api_key)
        url = api_url or (stored.api_url if stored else DEFAULT_API_URL)
        return url, Credentials(url, "api_key", api_key=api_key)
    if stored is not None and (api_url is None or same_api(api_url, stored.api_url)):
        return stored.api_url, stored
    url = api_url or DEFAULT_API_URL
    if required:
        elsewhere = f" (you are logged in to {stored.api_url})" if stored else ""
        fail(
            f"not logged in to {url}{elsewhere}: run `saassy login`, or pass --api-key or set "
            "SAASSY_API_KEY (an API key: `saassy api-keys create NAME`)"
        )
    return url, None


@contextmanager
def api_client(
    api_url: str | None,
    api_key: str | None,
    *,
    required: bool = True,
    interrupted: str = "interrupted",
) -> Iterator[ApiClient]:
    """A client of the API; its failures become one clean line and exit status 1."""
    from saassy.cli.client import ApiClient, ApiError, ApiUnreachable

    url, credentials = resolve(api_url, api_key, required=required)
    try:
        with ApiClient(url, credentials, waiting=waiting) as client:
            yield client
    except ApiError as exc:
        api_failure(exc, credentials)
    except ApiUnreachable as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        errors.print(interrupted)
        raise typer.Exit(EXIT_INTERRUPTED) from None


def api_failure(exc: ApiError, credentials: Credentials | None = None) -> NoReturn:
    """`error: <code>: <message>`, naming the field when the message does not."""
    from saassy.cli.client import SessionEnded

    message = exc.message
    if exc.field and exc.field not in message:
        message += f" (field: {exc.field})"
    if isinstance(exc, SessionEnded):
        message += " (`saassy login`)"
    elif exc.status_code == 401:
        message += " (check --api-key or SAASSY_API_KEY, or `saassy login` again)"
    elif exc.code == "user_required":
        message += " (log in with your e-mail: `saassy login`)"
    elif credentials is None and exc.status_code in (401, 403):
        message += " (`saassy login` first)"
    fail(f"{exc.code}: {message}")
