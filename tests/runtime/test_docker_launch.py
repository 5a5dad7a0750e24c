"""The docker runtime when a container's launch fails or is cancelled: nothing of it may stay.

dockerd keeps the attach stream of a container that was created but never started open after
the container's removal, so a start that fails (runc refusing a mount, a cgroup, a profile; a
start cancelled by the task's cancel) left the stream's socket and its reader thread behind for
good: a worker leaking one of each per failed start. And a launch cancelled (a task's cancel)
while dockerd was still creating its container left that container behind: the thread creating it
went on after launch had released what it knew of.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from docker.errors import APIError
from docker.models.containers import Container, ContainerCollection

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


async def test_a_launch_cancelled_while_dockerd_creates_leaves_no_container(
    runtime: DockerRuntime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dockerd slow to answer a create (a loaded host): the cancel lands after the container
    exists and before launch knows its id."""
    create = ContainerCollection.create
    creating, created = threading.Event(), threading.Event()

    def slow_create(self: ContainerCollection, *args: Any, **kwargs: Any) -> Container:
        try:
            container = create(self, *args, **kwargs)
            creating.set()
            time.sleep(0.5)
            return container
        finally:
            created.set()

    monkeypatch.setattr(ContainerCollection, "create", slow_create)
    spec = shell_spec(tmp_path, "echo never", name="cancelled-while-created")
    launch = asyncio.ensure_future(runtime.start(spec))
    assert await asyncio.to_thread(creating.wait, 10)
    launch.cancel()
    with pytest.raises(asyncio.CancelledError):
        await launch
    assert await asyncio.to_thread(created.wait, 10)  # dockerd has answered, either way
    assert (
        runtime.host.client.api.containers(
            all=True, filters={"label": f"{LABEL_SANDBOX}={spec.name}"}
        )
        == []
    )
    assert list(runtime.host.work_root.glob(f"*{spec.name}*")) == []
