"""Talking to the server under test like a customer, and reading its database like an auditor."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import httpx
from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bench.echo import ECHO_INPUT, started_at
from bench.load import content_length
from saassy.kit.db import async_database_url, create_engine
from saassy.kit.time import as_utc, utcnow
from saassy.models import Task, TaskAttempt, TaskStatus
from saassy.models.tasks import TERMINAL_STATUSES

NOOP = {"type": "noop", "input": {}}
ECHO = {"type": "echo", "input": ECHO_INPUT}  # the worker program of the headline phases
T = TypeVar("T")


class BenchError(RuntimeError):
    """The run did not do what it measures (a task failed, a phase timed out)."""


@dataclass(frozen=True)
class Tenant:
    organization_id: uuid.UUID
    headers: dict[str, str]


@dataclass(frozen=True)
class Submitted:
    task_id: uuid.UUID
    accepted_at: float  # time.time() when the 202 arrived
    accepted_monotonic: float  # time.monotonic() then: the sandbox shares this clock


def http_client(url: str, connections: int = 32) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(base_url=url, limits=limits, timeout=60.0)


async def sign_up(client: httpx.AsyncClient) -> Tenant:
    email = f"bench-{uuid.uuid4().hex[:12]}@example.com"
    response = await client.post(
        "/api/v1/auth/signup", json={"email": email, "password": "benchmark passphrase"}
    )
    if response.status_code != 201:
        raise BenchError(f"signup answered {response.status_code}: {response.text}")
    body = response.json()
    return Tenant(
        organization_id=uuid.UUID(body["organization"]["id"]),
        headers={"Authorization": f"Bearer {body['access_token']}"},
    )


async def submit(
    client: httpx.AsyncClient, tenant: Tenant, payload: dict[str, Any] = ECHO
) -> Submitted:
    response = await client.post("/api/v1/tasks", json=payload, headers=tenant.headers)
    accepted_monotonic, accepted_at = time.monotonic(), time.time()
    if response.status_code != 202:
        raise BenchError(f"submit answered {response.status_code}: {response.text}")
    return Submitted(uuid.UUID(response.json()["id"]), accepted_at, accepted_monotonic)


async def submit_many(
    client: httpx.AsyncClient,
    tenant: Tenant,
    count: int,
    concurrency: int,
    payload: dict[str, Any] = ECHO,
) -> list[Submitted]:
    """`count` submissions from `concurrency` keep-alive connections in parallel, as fast as
    answered, to `client`'s server. Raw HTTP/1.1 as the submit API's Python load generator
    sends it (bench/load.py): the same requests a customer's client sends, for a fraction of
    httpx's CPU, which runs on the machine under test (~3 ms a request, against the ~12 ms the
    server spends on a whole task)."""
    url = client.base_url
    body = json.dumps(payload).encode()
    head = ["POST /api/v1/tasks HTTP/1.1", f"Host: {url.netloc.decode()}"]
    head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    head += [f"{name}: {value}" for name, value in tenant.headers.items()]
    wire = ("\r\n".join(head) + "\r\n\r\n").encode() + body
    remaining = iter(range(count))
    done: list[Submitted] = []

    async def one_connection() -> None:
        reader, writer = await asyncio.open_connection(url.host, url.port)
        try:
            for _ in remaining:
                writer.write(wire)
                answer = await reader.readuntil(b"\r\n\r\n")
                content = await reader.readexactly(content_length(answer))
                accepted_monotonic, accepted_at = time.monotonic(), time.time()
                if answer[9:12] != b"202":
                    raise BenchError(f"submit answered {answer[9:12].decode()}: {content[:300]!r}")
                task_id = uuid.UUID(json.loads(content)["id"])
                done.append(Submitted(task_id, accepted_at, accepted_monotonic))
        finally:
            writer.close()

    await asyncio.gather(*(one_connection() for _ in range(min(concurrency, count))))
    return done


class Auditor:
    """Reads the server's database directly (plain transactions: no write lock on SQLite)."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        url = async_database_url(database_url)
        options = {"sqlite_begin": "DEFERRED"} if url.get_backend_name() == "sqlite" else {}
        self.engine: AsyncEngine = create_async_engine(url, **options)

    async def close(self) -> None:
        await self.engine.dispose()

    async def count(self, organization_id: uuid.UUID, statuses: Sequence[TaskStatus]) -> int:
        query = select(func.count()).where(
            Task.organization_id == organization_id, Task.status.in_(list(statuses))
        )
        async with self.engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def wait_terminal(
        self, organization_id: uuid.UUID, count: int, timeout_s: float, poll_s: float = 0.05
    ) -> float:
        """Until `count` of the organization's tasks are terminal; returns perf_counter then."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if await self.count(organization_id, list(TERMINAL_STATUSES)) >= count:
                return time.perf_counter()
            await asyncio.sleep(poll_s)
        raise BenchError(f"{count} tasks were not terminal within {timeout_s} s")

    async def wait_task(self, task_id: uuid.UUID, timeout_s: float, poll_s: float = 0.005) -> None:
        """Until one task is terminal."""
        query = select(Task.status).where(Task.id == task_id)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            async with self.engine.connect() as conn:
                if TaskStatus((await conn.execute(query)).scalar_one()).terminal:
                    return
            await asyncio.sleep(poll_s)
        raise BenchError(f"task {task_id} was not terminal within {timeout_s} s")

    async def require_succeeded(self, organization_id: uuid.UUID, count: int) -> None:
        succeeded = await self.count(organization_id, [TaskStatus.succeeded])
        if succeeded != count:
            raise BenchError(f"only {succeeded} of {count} no-op tasks succeeded")

    async def started(self, task_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, tuple[float, float]]:
        """Per task: (created_at, first attempt's started_at) as epoch seconds."""
        found: dict[uuid.UUID, tuple[float, float]] = {}
        query = (
            select(Task.id, Task.created_at, TaskAttempt.started_at)
            .join(TaskAttempt, TaskAttempt.task_id == Task.id)
            .where(TaskAttempt.number == 1)
        )
        async with self.engine.connect() as conn:
            for chunk in _chunks(list(task_ids), 500):
                rows = await conn.execute(query.where(Task.id.in_(chunk)))
                for task_id, created_at, started_at in rows:
                    if started_at is not None:
                        found[task_id] = (_epoch(created_at), _epoch(started_at))
        return found

    async def program_started(self, task_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, ProgramStart]:
        """Per task: its row's creation and the clocks its echo program read first thing."""
        found: dict[uuid.UUID, ProgramStart] = {}
        query = select(Task.id, Task.created_at, Task.result)
        async with self.engine.connect() as conn:
            for chunk in _chunks(list(task_ids), 500):
                for task_id, created_at, result in await conn.execute(
                    query.where(Task.id.in_(chunk))
                ):
                    if result is not None:
                        monotonic, realtime = started_at(result)
                        found[task_id] = ProgramStart(_epoch(created_at), realtime, monotonic)
        return found

    async def flood(self, organization_id: uuid.UUID, count: int) -> None:
        """Queue `count` echo tasks for one organization straight into the table (fast)."""
        now = utcnow()
        rows: list[dict[str, Any]] = [
            {
                "id": uuid.uuid4(),
                "organization_id": organization_id,
                "type": "echo",
                "status": TaskStatus.queued,
                "input": ECHO_INPUT,
                "timeout_s": 30,
                "max_attempts": 1,
                "attempt_count": 0,
                "run_after": now,
                "created_at": now,
            }
            for _ in range(count)
        ]
        engine = create_engine(self.database_url)  # the app's engine: BEGIN IMMEDIATE on SQLite
        try:
            async with engine.begin() as conn:
                for chunk in _chunks(rows, 1000):
                    await conn.execute(insert(Task), chunk)
        finally:
            await engine.dispose()

    async def drop_queued(self, organization_id: uuid.UUID) -> None:
        """Delete an organization's queued tasks (a flood that has served), then wait until
        what it has running ends: the next measurement starts on an idle engine."""
        engine = create_engine(self.database_url)
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    delete(Task).where(
                        Task.organization_id == organization_id,
                        Task.status == TaskStatus.queued,
                    )
                )
        finally:
            await engine.dispose()
        deadline = time.monotonic() + 120
        busy = [TaskStatus.dispatched, TaskStatus.running]
        while await self.count(organization_id, busy):
            if time.monotonic() > deadline:
                raise BenchError("the flood's running tasks did not end within 120 s")
            await asyncio.sleep(0.05)


@dataclass(frozen=True)
class ProgramStart:
    """When a task's row was created and when its program began (epoch seconds; monotonic)."""

    created_at: float
    realtime: float
    monotonic: float


def _epoch(value: datetime) -> float:
    return as_utc(value).timestamp()


def _chunks(items: list[T], size: int) -> list[list[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
