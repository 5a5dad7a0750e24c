"""What every process-backed sandbox handle shares: the timeout, kill, output and exit bookkeeping.

A subclass launches the process and knows how to kill its whole tree and measure it; this base
enforces the hard timeout, turns our own kills into `timed_out` / `killed`, and makes `wait()`,
`kill()` and `cleanup()` safe to call from anywhere, any number of times.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Protocol

import structlog

from saassy.runtime.base import (
    EndReason,
    Exit,
    OutputChunk,
    OutputLine,
    SandboxHandle,
    SandboxSpec,
    Usage,
)
from saassy.runtime.output import OutputPump
from saassy.runtime.redaction import Redactor

log = structlog.get_logger(__name__)

OUTPUT_GRACE_S = 1.0
SETTLE_S = 0.05


class LaunchedProcess(Protocol):
    """What supervision needs of a started process (`asyncio.subprocess.Process` has it)."""

    @property
    def pid(self) -> int: ...

    @property
    def stdout(self) -> asyncio.StreamReader | None: ...

    @property
    def stderr(self) -> asyncio.StreamReader | None: ...

    async def wait(self) -> int: ...


class SupervisedProcess(SandboxHandle):
    """A launched process supervised until exit; subclasses kill and measure it."""

    def __init__(self, spec: SandboxSpec) -> None:
        self.spec = spec
        self._process: LaunchedProcess | None = None
        secrets = {name: value.get_secret_value() for name, value in spec.secrets.items()}
        self._pump = OutputPump(redactor=Redactor(secrets), max_bytes=spec.max_log_bytes)
        self._requested: EndReason | None = None
        self._exit: Exit | None = None
        self._usage: Usage | None = None
        self._supervisor: asyncio.Task[Exit] | None = None
        self._started_at = 0.0
        self._ended_at: float | None = None
        self._cleaned = False
        self._after_cleanup: list[Callable[[], None]] = []

    def _supervise(self, process: LaunchedProcess) -> None:
        self._process = process
        self._started_at = time.monotonic()
        self._pump.attach("stdout", process.stdout)
        self._pump.attach("stderr", process.stderr)
        self._supervisor = asyncio.create_task(self._run(process), name=f"sandbox {self.spec.name}")

    async def _run(self, process: LaunchedProcess) -> Exit:
        try:
            async with asyncio.timeout(self.spec.limits.timeout_s):
                returncode = await process.wait()
        except TimeoutError:
            self._requested = self._requested or EndReason.timed_out
            await self._kill_tree()
            returncode = await process.wait()
        self._ended_at = time.monotonic()
        # The tree's last members close the pipes as they exit. Still open after SETTLE_S:
        # something outlived the main process and holds them, kill it now; else `_finish` makes
        # sure nothing is left.
        if not await self._pump.closed(SETTLE_S):
            await self._kill_tree()
        await self._pump.drained(OUTPUT_GRACE_S)
        oom = await self._finish()
        exit_ = self._exit_for(returncode, oom)
        log.info(
            "sandbox.ended",
            sandbox=self.spec.name,
            reason=exit_.reason.value,
            exit_code=exit_.exit_code,
            signal=exit_.signal,
        )
        self._exit = exit_
        return exit_

    def _exit_for(self, returncode: int, oom: bool) -> Exit:
        code, sig = (returncode, None) if returncode >= 0 else (None, -returncode)
        if self._requested is not None:
            return Exit(self._requested, code, sig)
        if oom and returncode != 0:
            return Exit(EndReason.out_of_memory, code, sig)
        return Exit(EndReason.exited, code, sig)

    @property
    def wall_seconds(self) -> float:
        end = self._ended_at if self._ended_at is not None else time.monotonic()
        return end - self._started_at

    async def wait(self) -> Exit:
        assert self._supervisor is not None, "sandbox was never started"
        return await asyncio.shield(self._supervisor)

    async def kill(self) -> None:
        if self._supervisor is None or self._supervisor.done():
            return
        self._requested = self._requested or EndReason.killed
        await self._kill_tree()
        with contextlib.suppress(Exception):
            await self.wait()

    def output(self) -> AsyncIterator[OutputLine]:
        return self._pump.lines()

    def output_chunks(self) -> AsyncIterator[OutputChunk]:
        return self._pump.chunks()

    async def usage(self) -> Usage:
        if self._usage is not None:
            return self._usage
        return await self._measure_now()

    async def cleanup(self) -> None:
        if self._cleaned:
            return
        if self._supervisor is not None and not self._supervisor.done():
            await self.kill()
        self._cleaned = True
        try:
            await self._release()
        finally:
            for callback in self._after_cleanup:
                callback()

    def after_cleanup(self, callback: Callable[[], None]) -> None:
        """Run `callback` once the sandbox is released (the runtime takes back its uid)."""
        self._after_cleanup.append(callback)

    @abc.abstractmethod
    async def _kill_tree(self) -> None:
        """SIGKILL every process the sandbox started, and return once they are gone."""

    @abc.abstractmethod
    async def _finish(self) -> bool:
        """After exit: kill whatever is left of the tree, record final usage in `self._usage`;
        return whether memory ran out."""

    @abc.abstractmethod
    async def _measure_now(self) -> Usage:
        """Usage so far, while running."""

    @abc.abstractmethod
    async def _release(self) -> None:
        """Free cgroups, mounts and temporary files."""
