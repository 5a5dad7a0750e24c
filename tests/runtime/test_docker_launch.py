"""The docker runtime when a container's start fails: nothing of it may outlive the failure.

dockerd keeps the attach stream of a container that was created but never started open after
the container's removal, so a start that fails (runc refusing a mount, a cgroup, a profile; a
start cancelled by the task's cancel) left the stream's socket and its reader thread behind for
good: a worker leaking one of each per failed start.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from docker.errors import APIError

from saassy.runtime.container import LABEL_SANDBOX
from saassy.runtime.docker import DockerRuntime
from tests.runtime.docker_support import docker_runtime, shell_spec


@pytest.fixture(scope="module")
def runtime() -> Iterator[DockerRuntime]:
    runtime = docker_runtime()
    yield runtime
    runtime.close()


def _attach_threads() -> list[str]:
    return [thread.name for thread in threading.enumerate() if thread.name.startswith("attach ")]


async def _gone(listed: Callable[[], list[str]], seconds: float = 5.0) -> bool:
    for _ in range(int(seconds / 0.05)):
        if not listed():
            return True
        await asyncio.sleep(0.05)
    return False


async def test_a_start_that_fails_leaves_no_attach_stream(
    runtime: DockerRuntime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dockerd's answer when runc cannot start a container (here given without asking runc to
    fail: which of its checks fails differs between versions)."""

    def refuse(container: str) -> None:
        raise APIError("500 Server Error: OCI runtime create failed: (the test's)")

    monkeypatch.setattr(runtime.host.client.api, "start", refuse)
    for attempt in range(3):
        spec = shell_spec(tmp_path / str(attempt), "echo never", name=f"start-fails-{attempt}")
        with pytest.raises(APIError, match="OCI runtime create failed"):
            await runtime.start(spec)
        assert (
            runtime.host.client.api.containers(
                all=True, filters={"label": f"{LABEL_SANDBOX}={spec.name}"}
            )
            == []
        )
    # Its reader ends only once the stream (and its socket) is closed.
    assert await _gone(_attach_threads), _attach_threads()
