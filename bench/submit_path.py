"""What one authenticated `POST /api/v1/tasks` costs the server: SQL, transactions, CPU.

`python -m bench.submit_path [--requests 2000] [--database-url postgresql://...]`

The app runs in this process with the engine off (only the API is measured), on the bench
catalog (a plan without limits, the no-op task type), driven through httpx's ASGI transport.
Per request it reports the SQL statements (SQLAlchemy's `before_cursor_execute`, SQLite's
`BEGIN IMMEDIATE` left out), the transactions (commits and rollbacks), the process's CPU time
and, in brackets, the event loop thread's alone (on SQLite, aiosqlite's thread runs the SQL),
once with an API key and once with an access token, without an Idempotency-Key. A bare
FastAPI endpoint taking the same body through the same transport is the floor: what the
client and the transport cost; the app's `GET /health` adds its middleware and routing.
`--show-sql` prints the statements of one submission of each kind; `--profile FILE` writes a
cProfile of the API-key submissions instead of measuring.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import secrets
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, status
from pydantic import BaseModel
from sqlalchemy import event, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.client import NOOP
from bench.stage import Stage, add_database_option, scratch_stage
from saassy.app import create_app
from saassy.config import load_settings
from saassy.context import AppContext
from saassy.kit.time import utcnow
from saassy.models import User

WARM_UP = 100


@dataclass
class SqlCounter:
    """Statements and transactions seen by one engine, and the statements' text if asked."""

    statements: int = 0
    transactions: int = 0
    recording: list[str] | None = None

    def attach(self, engine: AsyncEngine) -> None:
        event.listen(engine.sync_engine, "before_cursor_execute", self._statement)
        event.listen(engine.sync_engine, "commit", self._transaction)
        event.listen(engine.sync_engine, "rollback", self._transaction)

    def _statement(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith("BEGIN"):
            return
        self.statements += 1
        if self.recording is not None:
            self.recording.append(" ".join(statement.split()))

    def _transaction(self, _conn: Any) -> None:
        self.transactions += 1

    @contextmanager
    def record(self) -> Iterator[list[str]]:
        self.recording = []
        try:
            yield self.recording
        finally:
            self.recording = None


@dataclass
class Measured:
    label: str
    requests: int
    statements: int
    transactions: int
    cpu_s: float
    loop_cpu_s: float
    wall_s: float
    latencies_ms: list[float] = field(default_factory=list)

    def line(self) -> str:
        per = self.requests
        p50 = statistics.median(self.latencies_ms)
        return (
            f"{self.label:<14} {self.statements / per:6.2f} stmt  "
            f"{self.transactions / per:5.2f} txn  {self.cpu_s * 1000 / per:6.3f} CPU ms  "
            f"(loop {self.loop_cpu_s * 1000 / per:6.3f})  "
            f"{per / self.wall_s:7.0f} req/s  p50 {p50:6.2f} ms"
        )


Send = Callable[[], Any]


async def measure(
    label: str, counter: SqlCounter, send: Send, requests: int, concurrency: int
) -> Measured:
    for _ in range(WARM_UP):
        await send()
    statements, transactions = counter.statements, counter.transactions
    latencies: list[float] = []
    remaining = iter(range(requests))

    async def one_client() -> None:
        for _ in remaining:
            started = time.perf_counter()
            await send()
            latencies.append((time.perf_counter() - started) * 1000)

    cpu, loop_cpu, wall = time.process_time(), time.thread_time(), time.perf_counter()
    await asyncio.gather(*(one_client() for _ in range(concurrency)))
    return Measured(
        label,
        requests,
        counter.statements - statements,
        counter.transactions - transactions,
        time.process_time() - cpu,
        time.thread_time() - loop_cpu,
        time.perf_counter() - wall,
        latencies,
    )


class BareBody(BaseModel):
    type: str
    input: dict[str, Any]


class BareAccepted(BaseModel):
    id: str
    type: str
    status: str


def floor_app() -> FastAPI:
    """A floor's app so far: a `/health` for bench/server.py to see it up."""
    app = FastAPI()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def bare_app() -> FastAPI:
    """The floor: a FastAPI endpoint that validates the same body and answers 202."""
    app = floor_app()

    @app.post("/api/v1/tasks", status_code=status.HTTP_202_ACCEPTED)
    async def submit(body: BareBody) -> BareAccepted:
        return BareAccepted(id="0", type=body.type, status="queued")

    return app


def asgi_client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://saassy.test")


async def credentials(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> tuple[dict[str, str], dict[str, str]]:
    """A new customer's access-token headers and an API key of their organization (its address
    marked verified in the database: an unverified account may not create keys)."""
    email = f"submit-{uuid.uuid4().hex[:12]}@example.com"
    signup = await client.post(
        "/api/v1/auth/signup", json={"email": email, "password": "benchmark passphrase"}
    )
    signup.raise_for_status()
    async with engine.begin() as conn:
        await conn.execute(
            update(User).where(User.email == email).values(email_verified_at=utcnow())
        )
    token = {"Authorization": f"Bearer {signup.json()['access_token']}"}
    created = await client.post("/api/v1/api-keys", json={"name": "bench"}, headers=token)
    created.raise_for_status()
    return token, {"Authorization": f"Bearer {created.json()['key']}"}


def submitter(client: httpx.AsyncClient, headers: dict[str, str]) -> Send:
    async def send() -> None:
        response = await client.post("/api/v1/tasks", json=NOOP, headers=headers)
        if response.status_code != status.HTTP_202_ACCEPTED:
            raise RuntimeError(f"submit answered {response.status_code}: {response.text}")

    return send


def getter(client: httpx.AsyncClient, path: str) -> Send:
    async def send() -> None:
        (await client.get(path)).raise_for_status()

    return send


async def run(args: argparse.Namespace, stage: Stage) -> None:
    settings = load_settings(
        env="development",
        config=stage.config,
        data_dir=stage.data_dir,
        database_url=stage.database_url,
        run_engine=False,
        secret_key=secrets.token_urlsafe(48),
    )
    app = create_app(settings, background=False)
    async with app.router.lifespan_context(app), asgi_client(app) as client:
        ctx: AppContext = app.state.ctx
        counter = SqlCounter()
        counter.attach(ctx.engine)
        token, api_key = await credentials(client, ctx.engine)
        by_key, by_token = submitter(client, api_key), submitter(client, token)
        if args.show_sql:
            for label, send in (("API key", by_key), ("access token", by_token)):
                await send()
                with counter.record() as seen:
                    await send()
                print(f"-- {label}: {len(seen)} statements")
                print("\n".join(f"   {sql[:160]}" for sql in seen))
        async with asgi_client(bare_app()) as bare_client:
            bare = submitter(bare_client, {})
            health = getter(client, "/health")
            if args.profile:
                await profile(by_key, args.requests, args.profile)
                return
            for _ in range(args.rounds):
                for label, send in (
                    ("bare FastAPI", bare),
                    ("app /health", health),
                    ("API key", by_key),
                    ("access token", by_token),
                ):
                    result = await measure(label, counter, send, args.requests, args.concurrency)
                    print(result.line())


async def profile(send: Send, requests: int, path: Path) -> None:
    for _ in range(WARM_UP):
        await send()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(requests):
        await send()
    profiler.disable()
    profiler.dump_stats(path)
    print(f"profile of {requests} API-key submissions: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.submit_path", description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=1, help="Repeat the three measurements.")
    add_database_option(parser)
    parser.add_argument("--show-sql", action="store_true")
    parser.add_argument("--profile", type=Path, help="cProfile the API-key submissions here.")
    args = parser.parse_args()
    with scratch_stage(1, args.database_url, "submit") as stage:
        asyncio.run(run(args, stage))


if __name__ == "__main__":
    main()
