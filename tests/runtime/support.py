"""Run a Python snippet in a sandbox and keep everything a test wants to look at."""

from __future__ import annotations

import os
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from saassy.runtime.base import Exit, Limits, Runtime, SandboxHandle, SandboxSpec, Usage

PYTHON = "/usr/bin/python3"


@dataclass
class Run:
    handle: SandboxHandle
    exit: Exit
    usage: Usage
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)


def spec_for(workspace: Path, code: str, **limits: float) -> SandboxSpec:
    return SandboxSpec(
        # The pid: test runs of other checkouts on this host share the cgroup parent.
        name=f"test-{workspace.name}-{os.getpid()}",
        argv=(PYTHON, "-c", textwrap.dedent(code)),
        input_file=workspace / "input.json",
        output_dir=workspace / "output",
        events_file=workspace / "events.jsonl",
        limits=Limits.model_validate(limits),
    )


async def run_code(
    runtime: Runtime, workspace: Path, code: str, *, cleanup: bool = True, **limits: float
) -> Run:
    """Start, stream output to the end, wait; cleanup unless the test inspects the cgroup."""
    handle = await runtime.start(spec_for(workspace, code, **limits))
    stdout: list[str] = []
    stderr: list[str] = []
    async for line in handle.output():
        (stdout if line.stream == "stdout" else stderr).append(line.data.decode(errors="replace"))
    exit_ = await handle.wait()
    usage = await handle.usage()
    if cleanup:
        await handle.cleanup()
    return Run(handle, exit_, usage, stdout, stderr)
