"""Real sandboxes: without bubblewrap or writable cgroups these tests skip, and fail in CI."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from saassy.runtime.base import IsolationLevel
from saassy.runtime.process import ProcessRuntime
from tests.services import IN_CI


def require_isolation(runtime: ProcessRuntime) -> None:
    """Skip when this host cannot isolate; in CI that is a failure."""
    if runtime.isolation is IsolationLevel.namespaces_cgroups:
        return
    message = f"process runtime cannot isolate here: {', '.join(runtime.missing)}"
    if IN_CI:
        pytest.fail(f"{message}; CI must install bubblewrap and run as root with cgroups")
    pytest.skip(message)


@pytest.fixture(scope="session")
def isolated_runtime() -> ProcessRuntime:
    runtime = ProcessRuntime()
    require_isolation(runtime)
    return runtime


@pytest.fixture
def runtime(isolated_runtime: ProcessRuntime) -> ProcessRuntime:
    return isolated_runtime


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
