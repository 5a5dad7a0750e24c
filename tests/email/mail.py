"""Reading the e-mail outbox in tests, as a mailbox would."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select, update

from saassy.context import AppContext
from saassy.email.outbox import outbox_sealer
from saassy.kit.time import utcnow
from saassy.models import OutboxEmail

TOKEN_IN_LINK = re.compile(r"/login/magic\?token=([A-Za-z0-9_-]+)")


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str


async def outbox(ctx: AppContext, to: str | None = None) -> list[Mail]:
    """Every queued message (oldest first), bodies opened."""
    sealer = outbox_sealer(ctx.settings)
    async with ctx.sessionmaker() as session:
        statement = select(OutboxEmail).order_by(OutboxEmail.created_at)
        if to is not None:
            statement = statement.where(OutboxEmail.to_address == to)
        rows = (await session.execute(statement)).scalars().all()
    return [Mail(row.to_address, row.subject, sealer.open(row.body)) for row in rows]


def magic_token(body: str) -> str:
    match = TOKEN_IN_LINK.search(body)
    assert match is not None, body
    return match.group(1)


async def latest_magic_token(ctx: AppContext, to: str) -> str:
    messages = await outbox(ctx, to)
    assert messages, f"no e-mail to {to}"
    return magic_token(messages[-1].body)


async def latest_link_token(ctx: AppContext, to: str, path: str) -> str:
    """The token of the link to `path` in the newest e-mail to `to` that holds one."""
    pattern = re.compile(re.escape(path) + r"\?token=([A-Za-z0-9_-]+)")
    for mail in reversed(await outbox(ctx, to)):
        match = pattern.search(mail.body)
        if match is not None:
            return match.group(1)
    raise AssertionError(f"no e-mail to {to} links to {path}")


async def rows(ctx: AppContext) -> list[OutboxEmail]:
    """The outbox rows themselves, by recipient."""
    async with ctx.sessionmaker() as session:
        result = await session.execute(select(OutboxEmail).order_by(OutboxEmail.to_address))
        return list(result.scalars())


async def make_due(ctx: AppContext) -> None:
    """Skip the backoff: every unsent message is due now."""
    async with ctx.sessionmaker() as session, session.begin():
        await session.execute(update(OutboxEmail).values(next_attempt_at=utcnow()))
