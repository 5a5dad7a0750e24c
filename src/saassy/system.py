"""`/api/v1/system`: the version and the isolation in force, so nobody is misled about it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from saassy import __version__
from saassy.auth.dependencies import anonymous_rate_limit
from saassy.auth.scopes import READ_OR_ADMIN
from saassy.deps import Context

router = APIRouter(tags=["system"], dependencies=[READ_OR_ADMIN])


@router.get("/system", dependencies=[Depends(anonymous_rate_limit)])
async def system(ctx: Context) -> dict[str, Any]:
    """Version, database, and the sandbox runtime with the isolation level it enforces here."""
    engine = ctx.task_engine
    return {
        "version": __version__,
        "database": ctx.engine.dialect.name,
        "engine": "running" if engine is not None else "not running in this process",
        "runtime": engine.runtime.describe() if engine is not None else None,
    }
