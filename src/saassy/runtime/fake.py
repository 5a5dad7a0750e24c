"""An in-memory runtime for unit tests of the dispatcher: scripted exits, output and usage.

Script a sandbox by name (`runtime.script("task-1-attempt-1", FakeScript(...))`) or set
`runtime.default`; `runtime.started` records every spec. A script with `hang=True` runs until
`kill()` or its timeout, like a real sandbox would.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

from saassy.runtime.base import (
    EndReason,
    Exit,
    IsolationLevel,
    OutputLine,
    Runtime,
    SandboxHandle,
    SandboxSpec,
    Usage,
)

DEFAULT_USAGE = Usage(cpu_seconds=0.01, peak_memory_bytes=1024 * 1024, wall_seconds=0.01)


@dataclass(frozen=True)
class FakeScript:
    """What a fake sandbox does: print `output`, write `files` and `events`, then end as told."""

    exit_code: int = 0
    reason: EndReason = EndReason.exited
    output: tuple[OutputLine, ...] = ()
    files: Mapping[str, bytes] = field(default_factory=dict)
    events: tuple[str, ...] = ()  # lines appended to $SAASSY_EVENTS
    usage: Usage = field(default_factory=lambda: DEFAULT_USAGE)
    delay_s: float = 0.0
    hang: bool = False
    fail_to_start: Exception | None = None


class FakeSandbox(SandboxHandle):
    def __init__(self, spec: SandboxSpec, script: FakeScript) -> None:
        self.spec = spec
        self.script = script
        self.killed = False
        self.cleaned = False
        self._ended = asyncio.Event()
        self._exit: Exit | None = None
        self._started = time.monotonic()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        script = self.script
        try:
            if script.hang:
                await asyncio.sleep(self.spec.limits.timeout_s)
                self._end(Exit(EndReason.timed_out, None, 9))
                return
            await asyncio.sleep(script.delay_s)
        except asyncio.CancelledError:
            self._end(Exit(EndReason.killed, None, 9))
            return
        self.spec.output_dir.mkdir(parents=True, exist_ok=True)
        for name, data in script.files.items():
            path = self.spec.output_dir / name
            path.parent.mkdir(parents=True, exist_ok=True)  # `dir/file` names, as programs write
            path.write_bytes(data)
        if script.events and self.spec.events_file is not None:
            with self.spec.events_file.open("a", encoding="utf-8") as events:
                events.writelines(f"{line}\n" for line in script.events)
        code = script.exit_code if script.reason is EndReason.exited else None
        self._end(Exit(script.reason, code, None if code is not None else 9))

    def _end(self, exit_: Exit) -> None:
        if self._exit is None:
            self._exit = exit_
            self._ended.set()

    async def wait(self) -> Exit:
        await self._ended.wait()
        assert self._exit is not None
        return self._exit

    async def kill(self) -> None:
        self.killed = True
        if not self._ended.is_set():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._end(Exit(EndReason.killed, None, 9))  # cancelled before it even ran

    async def output(self) -> AsyncIterator[OutputLine]:
        for line in self.script.output:
            yield line
        await self._ended.wait()

    async def usage(self) -> Usage:
        if self._exit is not None and self._exit.reason is not EndReason.exited:
            return Usage(
                self.script.usage.cpu_seconds,
                self.script.usage.peak_memory_bytes,
                time.monotonic() - self._started,
            )
        return self.script.usage

    async def cleanup(self) -> None:
        await self.kill()
        self.cleaned = True


class FakeRuntime(Runtime):
    """Runs nothing; every sandbox follows its script."""

    name = "fake"
    isolation = IsolationLevel.namespaces_cgroups

    def __init__(self, default: FakeScript | None = None) -> None:
        self.default = default or FakeScript()
        self.scripts: dict[str, FakeScript] = {}
        self.started: list[SandboxSpec] = []
        self.handles: dict[str, FakeSandbox] = {}

    def script(self, name: str, script: FakeScript) -> None:
        self.scripts[name] = script

    async def start(self, spec: SandboxSpec) -> SandboxHandle:
        script = self.scripts.get(spec.name, self.default)
        if script.fail_to_start is not None:
            raise script.fail_to_start
        self.started.append(spec)
        handle = FakeSandbox(spec, script)
        self.handles[spec.name] = handle
        return handle
