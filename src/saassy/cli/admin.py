"""`saassy admin`: accounts and plans, straight in the database (no server needed).

The database is the one `saassy dev` uses in the same directory (--data-dir, else
SAASSY_DATA_DIR, else .saassy; SAASSY_DATABASE_URL over all), named on standard error.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.markup import escape

from saassy.cli.common import ConfigOption, DataDirOption, console, fail

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from saassy.config import Settings

app = typer.Typer(help="Administer accounts and plans.", no_args_is_help=True)
T = TypeVar("T")


def _in_session(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in one unit of work on the configured database."""
    import asyncio

    from saassy.cli.settings import reporting_errors, say_database
    from saassy.kit.db import create_engine, create_sessionmaker, session_scope

    unit_of_work = asynccontextmanager(session_scope)
    say_database(settings)

    async def run() -> T:
        engine = create_engine(settings.resolved_database_url)
        try:
            async with unit_of_work(create_sessionmaker(engine)) as session:
                return await work(session)
        finally:
            await engine.dispose()

    with reporting_errors():
        return asyncio.run(run())


def _read_password(password: str | None, password_stdin: bool) -> str:
    if password is not None and password_stdin:
        fail("give either --password or --password-stdin, not both")
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if password is not None:
        return password
    entered: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return entered


@app.command("create-user")
def create_user(
    email: Annotated[str, typer.Argument(help="The new user's e-mail address.")],
    password: Annotated[
        str | None,
        typer.Option(help="The password (visible to other local users; prefer the prompt)."),
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    staff: Annotated[
        bool, typer.Option("--staff", help="Make the user staff (the operator's admin).")
    ] = False,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Create a user with a personal organization; asks for the password unless given."""
    from pydantic import ValidationError

    from saassy.accounts.schemas import SignupRequest
    from saassy.accounts.service import register_user
    from saassy.cli.settings import settings_from
    from saassy.kit.time import utcnow

    settings = settings_from(config=config, data_dir=data_dir)
    secret = _read_password(password, password_stdin)
    try:
        checked = SignupRequest(email=email, password=secret)
    except ValidationError as exc:
        err = exc.errors()[0]
        fail(f"{err['loc'][0]}: {err['msg']}")

    async def create(session: AsyncSession) -> tuple[uuid.UUID, uuid.UUID]:
        user, organization = await register_user(
            session, settings, email=checked.email, password=checked.password, is_staff=staff
        )
        # The operator vouches for the address: no verification e-mail to wait for.
        user.email_verified_at = utcnow()
        return user.id, organization.id

    user_id, organization_id = _in_session(settings, create)
    role = "staff user" if staff else "user"
    console.print(f"created {role} {checked.email.lower()}")
    console.print(f"  user id          {user_id}")
    console.print(f"  organization id  {organization_id}")


@app.command("set-plan")
def set_plan(
    organization_id: Annotated[str, typer.Argument(help="The organization's id.")],
    plan: Annotated[str, typer.Argument(help="A plan key from saassy.toml, e.g. pro.")],
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Put an organization on a plan of the catalog, without per-customer overrides."""
    from saassy.admin.service import set_plan as assign_plan
    from saassy.cli.settings import settings_from

    settings = settings_from(config=config, data_dir=data_dir)
    try:
        org_uuid = uuid.UUID(organization_id)
    except ValueError:
        fail(f"not an organization id: {organization_id!r}")

    async def assign(session: AsyncSession) -> str:
        organization = await assign_plan(session, settings.catalog, org_uuid, plan)
        return organization.name

    name = _in_session(settings, assign)
    console.print(f"organization {org_uuid} ({escape(name)}) is now on plan {plan}")
