"""The Celery side: one task that runs the same no-op sandbox through the same ProcessRuntime.

Started by bench/celery_run.py as `celery -A bench.celery_worker worker` (prefork, the same
concurrency as Saassy's executor). Each attempt gets its own work dir with an input file, an
output dir and an events file, as Saassy's supervisor prepares them.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from pathlib import Path

from celery import Celery  # type: ignore[import-untyped]

from saassy.runtime.base import Limits, SandboxSpec
from saassy.runtime.process import ProcessRuntime

REDIS_URL = os.environ.get("SAASSY_BENCH_REDIS_URL", "redis://127.0.0.1:6379/5")
NOOP_LIMITS = Limits(memory_mb=128, cpus=0.5, pids=32, disk_mb=16, timeout_s=30)

app = Celery("saassy_bench", broker=REDIS_URL, backend=REDIS_URL)
app.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"])

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
    (work / "output").mkdir(parents=True)
    (work / "input.json").write_text("{}")
    (work / "events.jsonl").touch()
    spec = SandboxSpec(
        name=name,
        argv=("/bin/true",),
        input_file=work / "input.json",
        output_dir=work / "output",
        events_file=work / "events.jsonl",
        limits=NOOP_LIMITS,
    )
    handle = await runtime.start(spec)
    try:
        exit_ = await handle.wait()
    finally:
        await handle.cleanup()
    return exit_.exit_code if exit_.exit_code is not None else -1


@app.task(name="bench.noop_sandbox")  # type: ignore[untyped-decorator]
def noop_sandbox() -> int:
    """/bin/true in the sandbox; returns its exit code (stored in Redis as the result)."""
    runtime, loop = _process_state()
    name = f"celery-{uuid.uuid4().hex}"
    work = Path(tempfile.gettempdir()) / "saassy-bench-celery" / name
    try:
        return loop.run_until_complete(_run_sandbox(runtime, work, name))
    finally:
        shutil.rmtree(work, ignore_errors=True)
