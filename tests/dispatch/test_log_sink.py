"""A real sandbox's output through LogSink into the database and onto the bus, as the supervisor
streams it: in order, by stream, redacted, a batch per write, and a lone line live."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from pydantic import SecretStr

from saassy.context import AppContext
from saassy.dispatch.logs import MAX_ROW_BYTES, LogSink
from saassy.events.bus import TaskEvent
from saassy.events.memory import MemoryEventBus
from saassy.models import TaskLogChunk
from saassy.runtime.base import SandboxHandle, SandboxSpec
from saassy.runtime.process import ProcessRuntime
from saassy.task_output.repository import TaskOutputRepository
from tests.conftest import SignUp
from tests.dispatch.support import insert_tasks
from tests.runtime.conftest import require_isolation
from tests.runtime.support import own_work_root, spec_for

SECRET = "pw-0a1b2c3d4e5f60718293a4b5c6d7e8f9"


class Attempt:
    """One sandbox run whose output a LogSink stores, with a bus subscriber watching."""

    def __init__(self, ctx: AppContext, tmp_path: Path, organization_id: uuid.UUID) -> None:
        self.ctx = ctx
        self.organization_id = organization_id
        self.runtime = ProcessRuntime(work_dir=own_work_root(tmp_path))
        require_isolation(self.runtime)
        self.bus = MemoryEventBus(max_pending=100_000)
        self.workspace = tmp_path / "workspace"
        self.workspace.mkdir()
        (self.workspace / "input.json").write_text("{}")

    async def task(self) -> uuid.UUID:
        catalog = self.ctx.settings.catalog
        [task_id] = await insert_tasks(self.ctx.sessionmaker, catalog, self.organization_id)
        return task_id

    def sink(self, task_id: uuid.UUID) -> LogSink:
        return LogSink(
            self.ctx.sessionmaker,
            self.bus,
            organization_id=self.organization_id,
            task_id=task_id,
            attempt_number=1,
        )

    def spec(self, code: str) -> SandboxSpec:
        return spec_for(self.workspace, code)

    async def run_to_the_end(self, spec: SandboxSpec, task_id: uuid.UUID) -> None:
        """Run the sandbox, its output stored as the supervisor stores it, until it succeeds."""
        handle = await self.runtime.start(spec)
        try:
            await store(handle, self.sink(task_id))
            assert (await handle.wait()).succeeded
        finally:
            await handle.cleanup()

    async def rows(self, task_id: uuid.UUID) -> list[TaskLogChunk]:
        async with self.ctx.sessionmaker() as session:
            return list(await TaskOutputRepository(session).log_chunks(task_id))


async def store(handle: SandboxHandle, sink: LogSink) -> None:
    """What the supervisor does with a sandbox's output."""
    sink.start()
    async for chunk in handle.output_chunks():
        await sink.add(chunk)
    await sink.close()


async def test_output_is_stored_in_order_redacted_and_in_few_rows(
    ctx: AppContext, signup: SignUp, tmp_path: Path
) -> None:
    attempt = Attempt(ctx, tmp_path, uuid.UUID((await signup()).organization_id))
    task_id = await attempt.task()
    code = """
        import sys, time
        secret = open("/saassy/secrets/PASSWORD").read()
        print("start", flush=True)
        time.sleep(0.05)
        print("a warning", file=sys.stderr, flush=True)
        time.sleep(0.05)
        sys.stdout.write("".join(f"{i:099d}\\n" for i in range(20_000)))  # 2 MB
        sys.stdout.write("the password is " + secret[:12])
        sys.stdout.flush()
        time.sleep(0.2)
        sys.stdout.write(secret[12:] + ", and no newline follows")
    """
    spec = attempt.spec(code).model_copy(update={"secrets": {"PASSWORD": SecretStr(SECRET)}})
    events = attempt.bus.subscribe(attempt.organization_id)
    await attempt.run_to_the_end(spec, task_id)

    rows = await attempt.rows(task_id)
    text = "".join(row.data for row in rows)
    assert text == "".join(
        [
            "start\n",
            "a warning\n",
            *(f"{i:099d}\n" for i in range(20_000)),
            "the password is [redacted:PASSWORD], and no newline follows\n",
        ]
    )
    assert [row.stream for row in rows[:2]] == ["stdout", "stderr"]
    assert {row.stream for row in rows[2:]} == {"stdout"}
    assert [row.seq for row in rows] == list(range(1, len(rows) + 1))
    assert all(len(row.data.encode()) <= MAX_ROW_BYTES for row in rows)
    assert len(rows) < 100  # 20,003 lines: rows of hundreds of lines, not one each
    published = await _drain(events)
    assert [(e.data["seq"], e.data["stream"], e.data["data"]) for e in published] == [
        (row.seq, row.stream, row.data) for row in rows
    ]
    await events.close()


async def test_a_line_printed_alone_is_stored_and_published_while_the_task_runs(
    ctx: AppContext, signup: SignUp, tmp_path: Path
) -> None:
    attempt = Attempt(ctx, tmp_path, uuid.UUID((await signup()).organization_id))
    task_id = await attempt.task()
    code = """
        import time
        print("still working", flush=True)
        time.sleep(60)
    """
    events = attempt.bus.subscribe(attempt.organization_id)
    handle = await attempt.runtime.start(attempt.spec(code))
    storing = asyncio.create_task(store(handle, attempt.sink(task_id)))
    try:
        event = await events.get(10)  # the sink's timer wrote it: no batch filled, none closed
        assert event is not None
        assert event.data == {"attempt": 1, "seq": 1, "stream": "stdout", "data": "still working\n"}
        assert [row.data for row in await attempt.rows(task_id)] == ["still working\n"]
        assert not storing.done()
    finally:
        await handle.cleanup()
        await storing
        await events.close()


async def _drain(subscription: object) -> list[TaskEvent]:
    found = []
    while (event := await subscription.get(0.05)) is not None:  # type: ignore[attr-defined]
        found.append(event)
    return found


async def test_a_nul_byte_or_bad_utf8_in_the_output_loses_no_line(
    ctx: AppContext, signup: SignUp, tmp_path: Path
) -> None:
    attempt = Attempt(ctx, tmp_path, uuid.UUID((await signup()).organization_id))
    task_id = await attempt.task()
    code = """
        import sys
        sys.stdout.buffer.write(b"before\\nhas\\x00nul and \\xff\\nafter\\n")
    """
    await attempt.run_to_the_end(attempt.spec(code), task_id)
    text = "".join(row.data for row in await attempt.rows(task_id))
    assert text == "before\nhas\ufffdnul and \ufffd\nafter\n"  # PostgreSQL's text holds no NUL
