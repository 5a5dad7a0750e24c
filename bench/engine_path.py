"""What one attempt costs the engine's own transactions: SQL statements and CPU, no sandbox.

`python -m bench.engine_path [--tasks 2000] [--organizations 4] [--database-url postgresql://...]`

The app runs in this process with the engine off, on the bench catalog. Tasks are submitted
through the API (not measured), spread over `--organizations` customers; then the dispatcher
claims them for an executor with `--slots` slots that only records what it is given, and each
claim's outcome (a success with usage, as a no-op sandbox reports it) is written as the
supervisor writes it: first rounds with every slot free (each batch's outcomes written before
the next round), then the steady state (an outcome frees a slot, a round refills it). Per
dispatch round and per outcome it reports the statements (`before_cursor_execute`, SQLite's
`BEGIN IMMEDIATE` left out), the process's CPU time and the wall time (one caller at a time:
on SQLite, about how long the one connection is held). `--show-sql` prints one round's and one
outcome's statements; `--profile FILE` writes a cProfile of the steady state.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import secrets
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.client import NOOP
from bench.stage import Stage, add_database_option, scratch_stage
from bench.submit_path import SqlCounter, asgi_client
from saassy.app import create_app
from saassy.config import load_settings
from saassy.context import AppContext
from saassy.dispatch.dispatcher import Dispatcher
from saassy.dispatch.executor import AttemptRef, Executor
from saassy.dispatch.outcome import AttemptOutcome, write_outcome
from saassy.events.memory import MemoryEventBus
from saassy.kit.time import utcnow
from saassy.models import AttemptStatus, Task
from saassy.runtime.base import Usage

NOOP_USAGE = Usage(cpu_seconds=0.002, peak_memory_bytes=1_900_000, wall_seconds=0.009)


class RecordingExecutor(Executor):
    """Takes every claim and runs nothing: only the engine's SQL is measured."""

    starts_on_claim = True

    def __init__(self, parallelism: int) -> None:
        self.executor_id = f"bench:{uuid.uuid4().hex[:8]}"
        self.parallelism = parallelism
        self.claimed: list[tuple[AttemptRef, Task]] = []
        self.finished = 0

    @property
    def active(self) -> int:
        return len(self.claimed) - self.finished

    async def start(self) -> None:
        pass

    async def submit(self, attempt: AttemptRef, task: Task | None = None) -> None:
        assert task is not None
        self.claimed.append((attempt, task))

    async def cancel(self, task_id: uuid.UUID) -> bool:
        return False

    async def heartbeat(self) -> None:
        pass

    async def adopt(self) -> int:
        return 0

    async def stop(self, grace_s: float = 10.0) -> None:
        pass


async def submit_tasks(client: httpx.AsyncClient, tasks: int, organizations: int) -> None:
    tenants = []
    for _ in range(organizations):
        signup = await client.post(
            "/api/v1/auth/signup",
            json={"email": f"{uuid.uuid4().hex[:12]}@example.com", "password": "bench passphrase"},
        )
        signup.raise_for_status()
        tenants.append({"Authorization": f"Bearer {signup.json()['access_token']}"})
    for n in range(tasks):
        response = await client.post("/api/v1/tasks", json=NOOP, headers=tenants[n % len(tenants)])
        response.raise_for_status()


def outcome() -> AttemptOutcome:
    return AttemptOutcome(
        AttemptStatus.succeeded, exit_code=0, end_reason="exited", usage=NOOP_USAGE, result={}
    )


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
        await submit_tasks(client, args.tasks, args.organizations)
        counter = SqlCounter()
        counter.attach(ctx.engine)
        executor = RecordingExecutor(args.slots)
        dispatcher = Dispatcher(ctx.sessionmaker, settings.catalog, executor, MemoryEventBus())

        async def finish(ref: AttemptRef, task: Task) -> None:
            async with ctx.sessionmaker() as session, session.begin():
                await write_outcome(
                    session,
                    settings.catalog,
                    task,
                    attempt_number=ref.attempt_number,
                    executor_id=ref.executor_id,
                    outcome=outcome(),
                    now=utcnow(),
                )
            executor.finished += 1

        if args.show_sql:
            with counter.record() as seen:
                await dispatcher.dispatch_once()
            print(f"-- one dispatch round ({len(executor.claimed)} claimed): {len(seen)} stmts")
            print("\n".join(f"   {sql[:200]}" for sql in seen))
            with counter.record() as seen:
                await finish(*executor.claimed[0])
            print(f"-- one outcome: {len(seen)} statements")
            print("\n".join(f"   {sql[:200]}" for sql in seen))
            for claimed in executor.claimed[1:]:
                await finish(*claimed)

        full, refill, outcomes = Meter(counter), Meter(counter), Meter(counter)
        # Rounds with every slot free, each batch's outcomes written before the next round.
        while len(executor.claimed) < args.tasks // 2:
            with full.measure():
                claims = await dispatcher.dispatch_once()
            with outcomes.measure(len(claims)):
                for claimed in executor.claimed[-len(claims) :]:
                    await finish(*claimed)
        # The steady state: one outcome frees one slot, one round refills it.
        await dispatcher.dispatch_once()
        profiler = cProfile.Profile() if args.profile else None
        if profiler is not None:
            profiler.enable()
        while executor.finished < len(executor.claimed):
            with outcomes.measure():
                await finish(*executor.claimed[executor.finished])
            with refill.measure():
                await dispatcher.dispatch_once()
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.profile)
        print(f"{args.organizations} organizations, {args.slots} slots, {args.tasks} tasks")
        print(f"dispatch round, all slots free: {full.line()}")
        print(f"dispatch round, one slot free:  {refill.line()}")
        print(f"outcome (success, usage):       {outcomes.line()}")


@dataclass
class Meter:
    """Statements and process CPU over the measured calls, per call."""

    counter: SqlCounter
    calls: int = 0
    statements: int = 0
    cpu_s: float = 0.0
    wall_s: float = 0.0

    @contextmanager
    def measure(self, calls: int = 1) -> Iterator[None]:
        statements, cpu, wall = self.counter.statements, time.process_time(), time.perf_counter()
        yield
        self.wall_s += time.perf_counter() - wall
        self.cpu_s += time.process_time() - cpu
        self.statements += self.counter.statements - statements
        self.calls += calls

    def line(self) -> str:
        per = max(1, self.calls)
        return (
            f"{self.statements / per:5.2f} stmt  {self.cpu_s * 1000 / per:6.3f} CPU ms  "
            f"{self.wall_s * 1000 / per:6.3f} wall ms  ({self.calls})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.engine_path", description=__doc__)
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--organizations", type=int, default=4)
    parser.add_argument("--slots", type=int, default=8, help="The executor's parallelism.")
    add_database_option(parser)
    parser.add_argument("--show-sql", action="store_true")
    parser.add_argument("--profile", type=Path, help="cProfile the steady state into this file.")
    args = parser.parse_args()
    with scratch_stage(args.slots, args.database_url, "engine-path") as stage:
        asyncio.run(run(args, stage))


if __name__ == "__main__":
    main()
