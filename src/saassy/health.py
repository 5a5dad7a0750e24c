"""`/health` (the process is alive) and `/ready` (it can reach its database)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from saassy import __version__
from saassy.deps import Context
from saassy.runtime.base import IsolationLevel

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok", "version": __version__}


@router.get("/ready", response_model=None)
async def ready(ctx: Context) -> JSONResponse | dict[str, str]:
    """Ready when the database answers and, where tasks run in this process, a sandbox can be
    made: a process that would refuse every task is not ready to serve them."""
    try:
        async with ctx.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:
        return JSONResponse(
            {"status": "unavailable", "database": type(exc).__name__}, status_code=503
        )
    # Which bus carries live logs; a Redis bus that is reconnecting leaves tasks running.
    body = {"status": "ready", "database": ctx.engine.dialect.name, "events": ctx.events.describe()}
    runtime = ctx.task_engine.runtime if ctx.task_engine is not None else None
    if runtime is not None:
        body["isolation"] = runtime.summary()  # also when it is the unisolated opt-in
        if runtime.isolation is IsolationLevel.unavailable:
            return JSONResponse(body | {"status": "unavailable"}, status_code=503)
    return body
