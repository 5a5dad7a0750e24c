"""Reading the audit log as the database holds it."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select, text

from saassy.context import AppContext
from saassy.models import AuditEntry

USER_AGENT = "audit-test/1.0 (pytest)"
HEADERS = {"User-Agent": USER_AGENT}


async def entries(ctx: AppContext, action: str | None = None) -> list[AuditEntry]:
    """Every entry, oldest first (only those of `action` if given)."""
    async with ctx.sessionmaker() as session:
        statement = select(AuditEntry).order_by(AuditEntry.created_at, AuditEntry.id)
        if action is not None:
            statement = statement.where(AuditEntry.action == action)
        return list((await session.scalars(statement)).all())


async def action_counts(ctx: AppContext) -> Counter[str]:
    return Counter(entry.action for entry in await entries(ctx))


async def table_text(ctx: AppContext) -> str:
    """Every column of every entry as text, to search for what must never be there."""
    async with ctx.sessionmaker() as session:
        rows = (await session.execute(text("SELECT * FROM audit_entries"))).all()
    return "\n".join(" ".join(str(value) for value in row) for row in rows)
