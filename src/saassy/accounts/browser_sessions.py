"""Dashboard sign-ins: an opaque token in an httpOnly cookie, its digest in `browser_sessions`.

A session ends when its user logs out, logs out everywhere, changes their password, is disabled,
or after `BROWSER_SESSION_IDLE` without a request (and in any case `BROWSER_SESSION_MAX` after it
began). Seen-at times are written at most once a minute so browsing does not write per page.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from saassy.kit.security import new_token, token_digest
from saassy.kit.time import utcnow
from saassy.models import BrowserSession, User

BROWSER_SESSION_IDLE = timedelta(days=14)
BROWSER_SESSION_MAX = timedelta(days=30)
SEEN_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class StartedSession:
    token: str  # for the cookie; never stored
    record: BrowserSession


async def start_browser_session(
    session: AsyncSession, user: User, *, user_agent: str, ip: str
) -> StartedSession:
    """Sign `user` in to the dashboard (and note the sign-in on the account)."""
    now = utcnow()
    token = new_token()
    record = BrowserSession(
        user_id=user.id,
        token_hash=token_digest(token),
        user_agent=user_agent[:255],
        ip=ip[:64],
        last_seen_at=now,
        expires_at=now + BROWSER_SESSION_MAX,
    )
    session.add(record)
    user.last_login_at = now
    await session.flush()
    return StartedSession(token, record)


async def live_browser_session(session: AsyncSession, token: str) -> BrowserSession | None:
    """The session a cookie names, if it is still live; refreshes its seen-at time."""
    record = await session.scalar(
        select(BrowserSession).where(BrowserSession.token_hash == token_digest(token))
    )
    now = utcnow()
    if (
        record is None
        or record.revoked_at is not None
        or record.expires_at <= now
        or now - record.last_seen_at > BROWSER_SESSION_IDLE
    ):
        return None
    if now - record.last_seen_at > SEEN_RESOLUTION:
        record.last_seen_at = now
    return record


async def user_browser_sessions(session: AsyncSession, user_id: uuid.UUID) -> list[BrowserSession]:
    """The user's live sessions, most recently seen first."""
    now = utcnow()
    rows = await session.scalars(
        select(BrowserSession)
        .where(
            BrowserSession.user_id == user_id,
            BrowserSession.revoked_at.is_(None),
            BrowserSession.expires_at > now,
            BrowserSession.last_seen_at > now - BROWSER_SESSION_IDLE,
        )
        .order_by(BrowserSession.last_seen_at.desc())
    )
    return list(rows)


async def end_browser_session(session: AsyncSession, record_id: uuid.UUID) -> None:
    await session.execute(
        update(BrowserSession)
        .where(BrowserSession.id == record_id, BrowserSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


async def end_own_browser_session(
    session: AsyncSession, user_id: uuid.UUID, record_id: uuid.UUID
) -> bool:
    """Log out one of the user's own sessions; False when it is not theirs or already ended."""
    result = await session.execute(
        update(BrowserSession)
        .where(
            BrowserSession.id == record_id,
            BrowserSession.user_id == user_id,
            BrowserSession.revoked_at.is_(None),
        )
        .values(revoked_at=utcnow())
    )
    return int(getattr(result, "rowcount", 0) or 0) == 1


async def end_browser_session_of_token(session: AsyncSession, token: str) -> None:
    """Log out the session a cookie names; an unknown or ended one is fine."""
    await session.execute(
        update(BrowserSession)
        .where(
            BrowserSession.token_hash == token_digest(token), BrowserSession.revoked_at.is_(None)
        )
        .values(revoked_at=utcnow())
    )


async def end_user_browser_sessions(
    session: AsyncSession, user_id: uuid.UUID, *, keep: uuid.UUID | None = None
) -> int:
    """Log the user out everywhere (but `keep`, the session asking); the count ended."""
    query = update(BrowserSession).where(
        BrowserSession.user_id == user_id, BrowserSession.revoked_at.is_(None)
    )
    if keep is not None:
        query = query.where(BrowserSession.id != keep)
    result = await session.execute(query.values(revoked_at=utcnow()))
    return int(getattr(result, "rowcount", 0) or 0)


async def choose_organization(
    session: AsyncSession, record: BrowserSession, organization_id: uuid.UUID
) -> None:
    record.organization_id = organization_id
    await session.flush()
