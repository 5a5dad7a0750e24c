"""`/health` (the process is alive) and `/ready` (it can reach its database)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from saassy import __version__
from saassy.kit.deps import Context

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok", "version": __version__}


@router.get("/ready", response_model=None)
async def ready(ctx: Context) -> JSONResponse | dict[str, str]:
    try:
        async with ctx.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:
        return JSONResponse(
            {"status": "unavailable", "database": type(exc).__name__}, status_code=503
        )
    return {"status": "ready", "database": ctx.engine.dialect.name}
