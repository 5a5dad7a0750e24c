"""Real sandboxes, with the system's bwrap and with the bundled one (the system's hidden from
PATH, as on a machine with only Python), and for the suites both runtimes must pass (abuse,
hardening) docker containers of saassy/python:test too: without isolation or dockerd these
tests skip, and fail in CI."""

from __future__ import annotations

import functools
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from saassy.runtime.base import IsolationLevel, Runtime
from saassy.runtime.docker import DockerRuntime
from saassy.runtime.process import ProcessRuntime
from tests.runtime.docker_support import docker_runtime, python_image
from tests.runtime.support import require_host_python, without_system_bwrap
from tests.services import IN_CI


def require_isolation(runtime: ProcessRuntime, *, cgroups: bool = True) -> None:
    """Skip when this host cannot give the isolation a test needs (by default namespaces in
    cgroups, which needs root); in CI that is a failure."""
    wanted = {IsolationLevel.namespaces_cgroups}
    if not cgroups:
        wanted.add(IsolationLevel.namespaces)
    if runtime.isolation in wanted:
        return
    needs = "namespaces in writable cgroups (root)" if cgroups else "namespaces"
    message = f"this test needs {needs}; the process runtime has {runtime.summary()}"
    if IN_CI:
        pytest.fail(f"{message}; CI must install bubblewrap and run as root with cgroups")
    pytest.skip(message)


@functools.cache
def _host_runtime() -> ProcessRuntime:
    return ProcessRuntime()


def require_sandbox() -> None:
    """For tests that run a whole server with real tasks: any namespace sandbox will do."""
    require_isolation(_host_runtime(), cgroups=False)


# Where the system has no bwrap (a newcomer's machine) only the bundled one is there to test.
BINARIES = ["bundled-bwrap"]
if shutil.which("bwrap") or IN_CI:
    BINARIES.insert(0, "system-bwrap")


@functools.cache
def _process_runtime(binary: str) -> ProcessRuntime:
    if binary == "system-bwrap":
        if shutil.which("bwrap") is None:
            message = "no bwrap on PATH (apt install bubblewrap)"
            if IN_CI:
                pytest.fail(f"{message}; CI installs it to test both binaries")
            pytest.skip(message)
        runtime = ProcessRuntime()
        origin = "system"
    else:
        with without_system_bwrap():
            runtime = ProcessRuntime()
        origin = "bundled"
    require_isolation(runtime)
    assert runtime.bwrap is not None
    assert runtime.bwrap.origin == origin
    return runtime


@pytest.fixture(scope="session", params=BINARIES)
def isolated_runtime(request: pytest.FixtureRequest) -> ProcessRuntime:
    return _process_runtime(request.param)


@pytest.fixture
def runtime(isolated_runtime: ProcessRuntime) -> ProcessRuntime:
    return isolated_runtime


@pytest.fixture(scope="session")
def python_docker_runtime() -> Iterator[DockerRuntime]:
    """The docker runtime with saassy/python:test built: the shared suites' programs run in it."""
    runtime = docker_runtime()
    python_image(runtime)
    yield runtime
    runtime.close()


# The suites both runtimes pass: the process runtime (each bwrap binary) and docker.
RUNTIMES = [*BINARIES, "docker"]


@pytest.fixture(params=RUNTIMES)
def any_runtime(request: pytest.FixtureRequest) -> Runtime:
    """Each runtime in turn; a module of the shared suites names it its `runtime`."""
    if request.param == "docker":
        runtime: DockerRuntime = request.getfixturevalue("python_docker_runtime")
        return runtime
    require_host_python()
    return _process_runtime(request.param)


@pytest.fixture
def code_dir() -> Iterator[Path]:
    """A dir the sandbox uid can reach (pytest's tmp is 0700), like an installed package."""
    path = Path(tempfile.mkdtemp(prefix="saassy-code-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    (tmp_path / "input.json").write_text('{"hello": "sandbox"}')
    return tmp_path
