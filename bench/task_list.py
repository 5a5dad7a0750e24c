"""The dashboard's task list at depth: page 1 against page 100 of 10,000 tasks, same run.

`python -m bench.task_list [--tasks 10000] [--runs 5] [--requests 60] [--database-url ...]`

One organization holds `--tasks` tasks. The app runs in this process (engine off) behind an
ASGI wrapper that times each request from its arrival to the last byte of its response (the
server's time, without the client's). Each run asks for the first page and for the 100th
(reached by its keyset cursor, as the Next links reach it) `--requests` times each,
interleaved, and reports p50 and p99 of both and the ratio deep/first of the p50s. A list
built on OFFSET would read and throw away 4,950 rows for page 100, so its ratio grows with
the depth; keyset paging keeps it near 1. The last line shows that at the SQL level, in the
same run: the list's query alone by keyset, with OFFSET, and with the keyset written as
`a < x OR (a = x AND b < y)` (which SQLite cannot seek an index with).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import secrets
import statistics
import time
import uuid
from collections.abc import MutableMapping
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import and_, insert, or_, select, tuple_

from bench.report import Row
from bench.stage import Stage, add_database_option, scratch_stage
from saassy.app import create_app
from saassy.config import load_settings
from saassy.context import AppContext
from saassy.kit.pagination import encode_cursor
from saassy.kit.time import utcnow
from saassy.models import Membership, Task, TaskStatus

PAGE_SIZE = 50
DEEP_PAGE = 100
TITLE = "Dashboard task list, 10,000 tasks: page 1 against page 100 (server time)"
# Keyset paging: page 100 costs what page 1 does; OFFSET would make it grow with the depth.
ROWS = [
    Row("task_list_first_p50_ms", "Page 1, p50", "ms"),
    Row("task_list_first_p99_ms", "Page 1, p99", "ms"),
    Row("task_list_deep_p50_ms", "Page 100, p50", "ms"),
    Row("task_list_deep_p99_ms", "Page 100, p99", "ms"),
    Row("task_list_deep_vs_first", "Page 100 / page 1, p50 (median of runs)", "x", at_most=1.5),
    Row("task_list_deep_vs_first_min", "... lowest run", "x"),
    Row("task_list_deep_vs_first_max", "... highest run", "x"),
    Row("task_list_query_keyset_deep_vs_first", "The query alone, keyset: deep / first", "x"),
    Row("task_list_query_offset_deep_vs_first", "... with OFFSET instead", "x"),
    Row("task_list_query_or_deep_vs_first", "... keyset written with OR", "x"),
]
CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')
Scope = MutableMapping[str, Any]


class ServerTimer:
    """Wraps the app: the time of each request, from its call to its last response byte."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seconds: list[float] = []

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        await self.app(scope, receive, send)
        self.seconds.append(time.perf_counter() - began)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def sign_up(client: httpx.AsyncClient) -> None:
    page = await client.get("/signup")
    token = CSRF.search(page.text)
    assert token, page.text
    response = await client.post(
        "/signup",
        data={
            "email": f"bench-{uuid.uuid4().hex[:8]}@example.com",
            "password": "correct horse battery",
            "csrf_token": token.group(1),
        },
    )
    assert response.status_code == 303, response.text


async def fill(ctx: AppContext, organization_id: uuid.UUID, count: int) -> list[Task]:
    """`count` finished tasks, one a second apart; answers them newest first."""
    start = utcnow() - timedelta(seconds=count)
    rows = [
        {
            "id": uuid.uuid4(),
            "organization_id": organization_id,
            "type": "noop",
            "status": TaskStatus.succeeded,
            "priority": 0,
            "input": {"n": n},
            "timeout_s": 30,
            "max_attempts": 1,
            "attempt_count": 1,
            "platform_losses": 0,
            "run_after": start + timedelta(seconds=n),
            "created_at": start + timedelta(seconds=n),
            "started_at": start + timedelta(seconds=n, milliseconds=5),
            "finished_at": start + timedelta(seconds=n, milliseconds=50),
        }
        for n in range(count)
    ]
    async with ctx.sessionmaker() as session, session.begin():
        for i in range(0, count, 1000):
            await session.execute(insert(Task), rows[i : i + 1000])
    newest_first = sorted(rows, key=lambda r: (r["created_at"], r["id"]), reverse=True)
    return [Task(**row) for row in newest_first]


async def query_controls(
    ctx: AppContext, organization_id: uuid.UUID, deep_after: Task, requests: int
) -> dict[str, float]:
    """The list's query alone, page 1 and page 100, by keyset and by OFFSET: what a regression
    to OFFSET paging would show, measured beside the pages."""
    base = (
        select(Task)
        .where(Task.organization_id == organization_id)
        .order_by(Task.created_at.desc(), Task.id.desc())
        .limit(PAGE_SIZE + 1)
    )
    past = or_(
        Task.created_at < deep_after.created_at,
        and_(Task.created_at == deep_after.created_at, Task.id < deep_after.id),
    )
    statements = {
        "first": base,
        # As kit/pagination.keyset writes it: a row-value comparison the index can seek.
        "keyset_deep": base.where(
            tuple_(Task.created_at, Task.id) < tuple_(deep_after.created_at, deep_after.id)
        ),
        # Two regressions it would catch: OFFSET, and the same keyset written with OR.
        "offset_deep": base.offset((DEEP_PAGE - 1) * PAGE_SIZE),
        "or_deep": base.where(past),
    }
    times: dict[str, list[float]] = {name: [] for name in statements}
    async with ctx.sessionmaker() as session:
        for _ in range(requests):
            for name, statement in statements.items():
                began = time.perf_counter()
                (await session.execute(statement)).scalars().all()
                times[name].append(time.perf_counter() - began)
    p50 = {name: statistics.median(seen) for name, seen in times.items()}
    return {
        "task_list_query_first_p50_ms": p50["first"] * 1000,
        "task_list_query_keyset_deep_p50_ms": p50["keyset_deep"] * 1000,
        "task_list_query_keyset_deep_vs_first": p50["keyset_deep"] / p50["first"],
        "task_list_query_offset_deep_vs_first": p50["offset_deep"] / p50["first"],
        "task_list_query_or_deep_vs_first": p50["or_deep"] / p50["first"],
    }


async def run(args: argparse.Namespace, stage: Stage) -> dict[str, float]:
    settings = load_settings(
        env="development",
        config=stage.config,
        data_dir=stage.data_dir,
        database_url=stage.database_url,
        run_engine=False,
        secret_key=secrets.token_urlsafe(48),
        # 5 runs of 120 pages come faster than the default 600 a minute on a quiet machine.
        dashboard_limit_per_user="100000000/minute",
    )
    app = create_app(settings, background=False)
    timer = ServerTimer(app)
    transport = httpx.ASGITransport(app=timer)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="https://bench.test") as client,
    ):
        ctx: AppContext = app.state.ctx
        await sign_up(client)
        async with ctx.sessionmaker() as session:
            organization_id = (await session.execute(select(Membership.organization_id))).scalar()
        assert organization_id is not None
        tasks = await fill(ctx, organization_id, args.tasks)
        last_before_deep = tasks[(DEEP_PAGE - 1) * PAGE_SIZE - 1]
        deep_url = "/app/tasks?after=" + encode_cursor(
            last_before_deep.created_at, last_before_deep.id
        )
        first_rows = await client.get("/app/tasks")
        deep_rows = await client.get(deep_url)
        assert first_rows.status_code == deep_rows.status_code == 200
        # Page 100 starts with the 4,951st newest task: the cursor lands where Next would.
        assert str(tasks[(DEEP_PAGE - 1) * PAGE_SIZE].id) in deep_rows.text
        ratios, firsts, deeps = [], [], []
        for _ in range(args.runs):
            first: list[float] = []
            deep: list[float] = []
            for _ in range(args.requests):
                for url, seen in (("/app/tasks", first), (deep_url, deep)):
                    timer.seconds.clear()
                    response = await client.get(url)
                    assert response.status_code == 200
                    seen.append(timer.seconds[-1])
            firsts.append(first)
            deeps.append(deep)
            ratios.append(statistics.median(deep) / statistics.median(first))
        every_first = [s for run_ in firsts for s in run_]
        every_deep = [s for run_ in deeps for s in run_]
        return {
            "task_list_tasks": float(args.tasks),
            "task_list_first_p50_ms": percentile(every_first, 0.5) * 1000,
            "task_list_first_p99_ms": percentile(every_first, 0.99) * 1000,
            "task_list_deep_p50_ms": percentile(every_deep, 0.5) * 1000,
            "task_list_deep_p99_ms": percentile(every_deep, 0.99) * 1000,
            "task_list_deep_vs_first": statistics.median(ratios),
            "task_list_deep_vs_first_min": min(ratios),
            "task_list_deep_vs_first_max": max(ratios),
        } | await query_controls(ctx, organization_id, last_before_deep, args.requests)


def print_numbers(numbers: dict[str, float], runs: int) -> None:
    print(f"Task list, {numbers['task_list_tasks']:,.0f} tasks in one organization (server time)")
    for page in ("first", "deep"):
        label = "page 1" if page == "first" else f"page {DEEP_PAGE}"
        print(
            f"  {label:>8}: p50 {numbers[f'task_list_{page}_p50_ms']:.2f} ms, "
            f"p99 {numbers[f'task_list_{page}_p99_ms']:.2f} ms"
        )
    print(
        f"  deep/first p50: {numbers['task_list_deep_vs_first']:.2f}x "
        f"(runs: {numbers['task_list_deep_vs_first_min']:.2f}-"
        f"{numbers['task_list_deep_vs_first_max']:.2f}x over {runs})"
    )
    print(
        f"  the query alone, p50: page 1 {numbers['task_list_query_first_p50_ms']:.2f} ms; "
        f"page {DEEP_PAGE} by keyset {numbers['task_list_query_keyset_deep_vs_first']:.2f}x, "
        f"with OFFSET {numbers['task_list_query_offset_deep_vs_first']:.2f}x, "
        f"keyset written with OR {numbers['task_list_query_or_deep_vs_first']:.2f}x"
    )


def run_task_list_numbers(
    database_url: str | None, tasks: int = 10_000, runs: int = 5, requests: int = 60
) -> dict[str, float]:
    """For `python -m bench`: the numbers of one run on a scratch database."""
    args = argparse.Namespace(tasks=tasks, runs=runs, requests=requests)
    with scratch_stage(1, database_url, "task-list") as stage:
        return asyncio.run(run(args, stage))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.task_list", description=__doc__)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--requests", type=int, default=60, help="Per page and run.")
    add_database_option(parser)
    args = parser.parse_args()
    numbers = run_task_list_numbers(args.database_url, args.tasks, args.runs, args.requests)
    print_numbers(numbers, args.runs)


if __name__ == "__main__":
    main()
