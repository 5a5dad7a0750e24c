"""Request-scoped dependencies, as `Annotated` aliases so signatures say what they use."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from saassy.config import Settings
from saassy.kit.context import AppContext
from saassy.kit.ratelimit import RateLimiter


def get_context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's unit of work: committed before the response is sent, else rolled back."""
    ctx = get_context(request)
    async with ctx.sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        await session.commit()
    if session.info.get("outbox_dirty"):
        ctx.outbox_wakeup.set()
    if session.info.get("tasks_queued"):
        ctx.dispatch_wakeup.set()


def get_settings(request: Request) -> Settings:
    return get_context(request).settings


def get_limiter(request: Request) -> RateLimiter:
    return get_context(request).limiter


def get_client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


Context = Annotated[AppContext, Depends(get_context)]
Session = Annotated[AsyncSession, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]
Limiter = Annotated[RateLimiter, Depends(get_limiter)]
ClientIP = Annotated[str, Depends(get_client_ip)]
