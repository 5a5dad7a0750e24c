"""Celery + Redis with Saassy's own sandbox: the echo program through the same ProcessRuntime.

Not the peer a user would pick (that is bench/celery_bwrap.py, a plain bwrap command line): this
one runs the very runtime the engine runs, so the two differ only in the engine around it. Started
by bench/celery_run.py as `celery -A bench.celery_worker worker` (prefork, the same concurrency as
Saassy's executor). Each attempt gets its own work dir, as Saassy's supervisor prepares it.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

from celery import Celery  # type: ignore[import-untyped]

from bench.echo import CPUS, DISK_MB, ECHO_ARGV, MEMORY_MB, PIDS, TIMEOUT_S, prepare_work_dir
from saassy.runtime.base import Limits, SandboxSpec
from saassy.runtime.process import ProcessRuntime

REDIS_URL = os.environ.get("SAASSY_BENCH_REDIS_URL", "redis://127.0.0.1:6379/5")
LIMITS = Limits(memory_mb=MEMORY_MB, cpus=CPUS, pids=PIDS, disk_mb=DISK_MB, timeout_s=TIMEOUT_S)

app = Celery("saassy_bench", broker=REDIS_URL, backend=REDIS_URL)
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
)

_runtime: ProcessRuntime | None = None
_loop: asyncio.AbstractEventLoop | None = None


def _process_state() -> tuple[ProcessRuntime, asyncio.AbstractEventLoop]:
    """One runtime and one event loop per worker process, made on its first task."""
    global _runtime, _loop
    if _runtime is None or _loop is None:
        _runtime = ProcessRuntime()
        _loop = asyncio.new_event_loop()
    return _runtime, _loop


async def _run_sandbox(runtime: ProcessRuntime, work: Path, name: str) -> int:
    spec = SandboxSpec(
        name=name,
        argv=ECHO_ARGV,
        input_file=work / "input.json",
        output_dir=work / "output",
        events_file=work / "events.jsonl",
        limits=LIMITS,
    )
    handle = await runtime.start(spec)
    try:
        exit_ = await handle.wait()
    finally:
        await handle.cleanup()
    return exit_.exit_code if exit_.exit_code is not None else -1


@app.task(name="bench.echo_in_runtime")  # type: ignore[untyped-decorator]
def echo_in_runtime(payload: Any) -> dict[str, Any]:
    """The echo program in Saassy's sandbox; returns its exit code and result.json."""
    runtime, loop = _process_state()
    name = f"celery-{uuid.uuid4().hex}"
    work = Path(tempfile.gettempdir()) / "saassy-bench-celery" / name
    try:
        prepare_work_dir(work, payload)
        code = loop.run_until_complete(_run_sandbox(runtime, work, name))
        result_file = work / "output" / "result.json"
        result = json.loads(result_file.read_text()) if result_file.exists() else None
        return {"exit_code": code, "result": result}
    finally:
        shutil.rmtree(work, ignore_errors=True)
