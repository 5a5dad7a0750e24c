"""The durable floor of the submit API: the bare endpoint that also stores each submission.

`bench/submit_api.py` serves it beside Saassy and the bare endpoint (`python -m bench.server
--durable`). It validates the same body as the bare endpoint, then writes one row, an INSERT and
its COMMIT through the platform's own database layer (`saassy.kit.db.create_engine`: on SQLite
WAL, one connection and `BEGIN IMMEDIATE`; on PostgreSQL a pool with its pre-ping), before it
answers 202: no authentication, rate limit, quota or idempotency. What a submission that is
durable when answered costs at the least in this stack, which the bare endpoint leaves out.
"""

from __future__ import annotations

import os
import uuid

from fastapi import FastAPI, status
from sqlalchemy import JSON, Column, DateTime, MetaData, String, Table, Uuid, func, insert, select

from bench.submit_path import BareAccepted, BareBody, floor_app
from saassy.kit.db import create_engine
from saassy.kit.time import utcnow

SUBMISSIONS = Table(
    "bench_durable_submissions",
    MetaData(),
    Column("id", Uuid, primary_key=True),
    Column("type", String(64), nullable=False),
    Column("input", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


async def create_table(database_url: str) -> None:
    """Once, before the servers start (several workers would race to create it)."""
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(SUBMISSIONS.metadata.create_all)
    finally:
        await engine.dispose()


def durable_app() -> FastAPI:
    """The app, on the database of `SAASSY_DATABASE_URL` (as the bench's Saassy server has it)."""
    engine = create_engine(os.environ["SAASSY_DATABASE_URL"])
    app = floor_app()

    @app.post("/api/v1/tasks", status_code=status.HTTP_202_ACCEPTED)
    async def submit(body: BareBody) -> BareAccepted:
        task_id = uuid.uuid4()
        async with engine.begin() as conn:
            await conn.execute(
                insert(SUBMISSIONS).values(
                    id=task_id, type=body.type, input=body.input, created_at=utcnow()
                )
            )
        return BareAccepted(id=str(task_id), type=body.type, status="queued")

    return app


async def stored(database_url: str) -> int:
    """How many submissions the floor stored."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            count = await conn.execute(select(func.count()).select_from(SUBMISSIONS))
            return int(count.scalar_one())
    finally:
        await engine.dispose()
