"""The app's request wiring: request-scoped dependencies, as `Annotated` aliases so
signatures say what they use.

Dependencies are `async def` even when they do not await: FastAPI runs a plain `def` one in a
worker thread, and that hop costs more than most of them do.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from saassy.audit.actors import Origin
from saassy.config import Settings
from saassy.context import AppContext
from saassy.kit.after_commit import drop_effects, take_effects
from saassy.kit.ratelimit import RateLimiter


def app_context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


async def get_context(request: Request) -> AppContext:
    return app_context(request)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's unit of work: committed before the response is sent, else rolled back."""
    async with unit_of_work(app_context(request)) as session:
        yield session


@asynccontextmanager
async def unit_of_work(ctx: AppContext) -> AsyncIterator[AsyncSession]:
    """A request's session: committed (then its after-commit effects run) when the work ends,
    rolled back when it raised."""
    async with ctx.sessionmaker() as session:
        try:
            yield session
        except BaseException:
            # Detached before the rollback, so not expired: the error page that follows still
            # reads what the request loaded (who is signed in, their organizations).
            session.expunge_all()
            await session.rollback()
            drop_effects(session)
            raise
        await session.commit()
        await ctx.after_commit(take_effects(session))


async def get_settings(request: Request) -> Settings:
    return app_context(request).settings


async def get_limiter(request: Request) -> RateLimiter:
    return app_context(request).limiter


async def get_client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def get_origin(request: Request) -> Origin:
    """Where the request came from, as the audit log records it."""
    host = request.client.host if request.client else None
    return Origin.of(host, request.headers.get("user-agent"))


Context = Annotated[AppContext, Depends(get_context)]
Session = Annotated[AsyncSession, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]
Limiter = Annotated[RateLimiter, Depends(get_limiter)]
ClientIP = Annotated[str, Depends(get_client_ip)]
RequestOrigin = Annotated[Origin, Depends(get_origin)]
