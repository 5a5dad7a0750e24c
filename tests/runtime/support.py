"""Run a Python snippet in a sandbox and keep everything a test wants to look at."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
import tempfile
import textwrap
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from saassy.runtime.base import (
    EgressGateway,
    Exit,
    Limits,
    Runtime,
    SandboxHandle,
    SandboxSpec,
    Usage,
)
from saassy.runtime.cgroups import SandboxCgroup
from saassy.runtime.container import ContainerSandbox
from saassy.runtime.process import ProcessRuntime
from saassy.runtime.sandbox import NamespaceSandbox
from tests.runtime.python_image import PYTHON_IMAGE
from tests.services import IN_CI

PYTHON = "/usr/bin/python3"
SRC = Path(__file__).parents[2] / "src"
PLATFORM = """
    import asyncio, sys
    from pathlib import Path
    from saassy.runtime.base import Limits, SandboxSpec
    from saassy.runtime.process import ProcessRuntime

    # It says so only once it has burned CPU of its own: on a loaded machine a wall-clock
    # wait alone may see it barely scheduled, and the tests check what it used.
    BURN = (
        "import time\\nwhile time.process_time() < 0.3: pass\\n"
        "print('burning', flush=True)\\nwhile True: pass"
    )

    async def main():
        workspace, name, work_dir, instance = Path(sys.argv[1]), *sys.argv[2:5]
        runtime = ProcessRuntime(
            work_dir=Path(work_dir) if work_dir else None, instance=instance or None
        )
        spec = SandboxSpec(
            name=name,
            argv=("/usr/bin/python3", "-c", BURN),
            input_file=workspace / "input.json",
            output_dir=workspace / "output",
            limits=Limits(cpus=1, timeout_s=60),
        )
        handle = await runtime.start(spec)
        async for line in handle.output():
            print(line.data.decode(), flush=True)
            await asyncio.sleep(60)

    asyncio.run(main())
"""


@dataclass
class Run:
    handle: SandboxHandle
    exit: Exit
    usage: Usage
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)


def require_host_python() -> None:
    """The shared suites' programs run the host's /usr/bin/python3 inside the process runtime's
    sandbox (it binds the host's /usr): without it they would fail at exec, each assertion
    reading wrong for a reason it does not test. A pyenv or venv Python does not stand in."""
    if os.access(PYTHON, os.X_OK):
        return
    message = f"no {PYTHON} for the sandboxed test programs: apt-get install python3"
    if IN_CI:
        pytest.fail(f"{message}; CI installs it")
    pytest.skip(message)


def image_for(runtime: Runtime) -> str | None:
    """What a spec names for this runtime: the docker one runs the Python image."""
    return PYTHON_IMAGE if runtime.name == "docker" else None


def cgroup_of(handle: SandboxHandle) -> SandboxCgroup:
    """The sandbox's own cgroup: the process runtime's members are in it, a container's in the
    child dockerd makes below it."""
    assert isinstance(handle, NamespaceSandbox | ContainerSandbox)
    assert handle.cgroup is not None
    return handle.cgroup


def members(cgroup: SandboxCgroup) -> list[int]:
    """Every process in the cgroup or below it."""
    found: list[int] = []
    for directory in cgroup.dirs.values():
        for procs in directory.rglob("cgroup.procs") if directory.exists() else []:
            with contextlib.suppress(OSError):
                found += [int(pid) for pid in procs.read_text().split()]
    return sorted(set(found))


def spec_for(
    workspace: Path, code: str, *, image: str | None = None, **limits: float
) -> SandboxSpec:
    return SandboxSpec(
        # The pid: test runs of other checkouts on this host share the cgroup parent.
        name=f"test-{workspace.name}-{os.getpid()}",
        argv=(PYTHON, "-c", textwrap.dedent(code)),
        image=image,
        input_file=workspace / "input.json",
        output_dir=workspace / "output",
        events_file=workspace / "events.jsonl",
        limits=Limits.model_validate(limits),
    )


async def run_code(
    runtime: Runtime, workspace: Path, code: str, *, cleanup: bool = True, **limits: float
) -> Run:
    """Start, stream output to the end, wait; cleanup unless the test inspects the cgroup."""
    handle = await runtime.start(spec_for(workspace, code, image=image_for(runtime), **limits))
    stdout: list[str] = []
    stderr: list[str] = []
    async for line in handle.output():
        (stdout if line.stream == "stdout" else stderr).append(line.data.decode(errors="replace"))
    exit_ = await handle.wait()
    usage = await handle.usage()
    if cleanup:
        await handle.cleanup()
    return Run(handle, exit_, usage, stdout, stderr)


async def leave_burning_sandbox(
    workspace: Path,
    name: str,
    work_dir: Path | None = None,
    burn_s: float = 0.3,
    instance: str | None = None,
) -> None:
    """A platform process starts sandbox `name` burning CPU and is killed with SIGKILL."""
    platform = await asyncio.create_subprocess_exec(
        sys.executable, "-c", textwrap.dedent(PLATFORM), str(workspace), name, str(work_dir or ""),
        instance or "",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(SRC)},
    )  # fmt: skip
    assert platform.stdout is not None
    try:
        while (line := await asyncio.wait_for(platform.stdout.readline(), 30)) != b"burning\n":
            assert line, "the platform died before its sandbox ran"  # (its log lines come first)
        await asyncio.sleep(burn_s)
    finally:
        platform.send_signal(signal.SIGKILL)
        await platform.wait()


def own_work_root(tmp_path: Path) -> Path:
    """A work root the sandbox uid can reach (pytest's tmp dirs are 0700)."""
    root = Path(tempfile.mkdtemp(prefix="saassy-sandboxes-test-"))
    (tmp_path / "work-root").symlink_to(root)  # removed with the test's tmp, for the record
    return root


@contextmanager
def without_programs(*names: str) -> Iterator[None]:
    """PATH as on a machine without these programs: every other program is still found."""
    shadow = Path(tempfile.mkdtemp(prefix="saassy-path-"))
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        for program in Path(directory).glob("*") if os.path.isdir(directory) else []:
            if program.name not in names and not (shadow / program.name).exists():
                (shadow / program.name).symlink_to(program)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("PATH", str(shadow))
            assert all(shutil.which(name) is None for name in names)
            yield
    finally:
        shutil.rmtree(shadow, ignore_errors=True)


def without_system_bwrap() -> AbstractContextManager[None]:
    """PATH as on a machine without the distribution's bubblewrap."""
    return without_programs("bwrap")


@asynccontextmanager
async def own_process_runtime(egress: EgressGateway | None = None) -> AsyncIterator[ProcessRuntime]:
    """An isolated runtime with a work root of its own, which no other test run's sweep frees."""
    root = Path(tempfile.mkdtemp(prefix="saassy-sandboxes-test-"))
    # The root is made 0711: the sandbox uid reaches its files.
    runtime = ProcessRuntime(work_dir=root, egress=egress)
    try:
        yield runtime
    finally:
        await runtime.sweep()  # what dead platforms left: cgroups and mounts
        shutil.rmtree(root, ignore_errors=True)
