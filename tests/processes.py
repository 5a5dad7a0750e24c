"""Saassy's own server commands as real processes on loopback, stopped after the test."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from saassy.server import server_options
from tests.runtime.conftest import require_sandbox


def stop_process(process: subprocess.Popen[bytes], timeout_s: float = 15) -> None:
    """Terminate, wait up to `timeout_s`, then kill: a started server never outlives its test."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Served:
    url: str
    port: int
    log: Path
    pid: int


# (command and its options, SAASSY_* variables, the path that answers 200 once it is up)
StartServer = Callable[[list[str], dict[str, str], str], Served]


@contextmanager
def servers(directory: Path) -> Iterator[StartServer]:
    """Start `saassy` server commands on free ports, with their logs and cwd in `directory`;
    stops every process started when it closes."""
    started: list[subprocess.Popen[bytes]] = []

    def start(command: list[str], saassy_env: dict[str, str], ready_path: str) -> Served:
        port = free_port()
        log = directory / f"{command[0]}-{port}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SAASSY_")}
        env.update(saassy_env)
        with log.open("wb") as out:
            process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [sys.executable, "-m", "saassy.cli", *command, "--port", str(port)],
                cwd=directory, env={**env, "PYTHONUNBUFFERED": "1"}, stdout=out, stderr=out,
            )  # fmt: skip
        started.append(process)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(
                    f"saassy {command[0]} exited with {process.returncode}:\n{log.read_text()}"
                )
            try:
                if httpx.get(f"{url}{ready_path}", timeout=1).status_code == 200:
                    return Served(url, port, log, process.pid)
            except httpx.TransportError:
                pass
            time.sleep(0.1)  # polling for readiness, not synchronisation
        pytest.fail(f"saassy {command[0]} was not ready within 60 s:\n{log.read_text()}")

    try:
        yield start
    finally:
        for process in started:
            stop_process(process)


@pytest.fixture
def run_server(tmp_path: Path) -> Iterator[StartServer]:
    """Start a `saassy` server command on a free port; stops every process it started."""
    with servers(tmp_path) as start:
        yield start


@pytest.fixture
def run_dev(run_server: StartServer) -> Callable[..., tuple[str, Path]]:
    """Start `saassy dev` on a given data dir: (its URL, its log)."""

    def start(data_dir: Path, **extra_env: str) -> tuple[str, Path]:
        require_sandbox()  # else /ready answers 503 and the server is never ready
        served = run_server(["dev", "--data-dir", str(data_dir)], extra_env, "/ready")
        return served.url, served.log

    return start


@asynccontextmanager
async def serving(app: FastAPI, port: int = 0) -> AsyncIterator[str]:
    """`app` (its lifespan already entered) behind a real uvicorn on loopback, configured as
    every Saassy server is, on `port` (else a free one); yields its base URL."""
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, lifespan="off", log_level="warning",
            # An event stream the client left is only noticed at its next write: do not wait
            # for it forever when the test ends.
            timeout_graceful_shutdown=2, **server_options(),
        )
    )  # fmt: skip
    task = asyncio.create_task(server.serve())
    while not server.started:  # uvicorn offers no start-up event
        if task.done():
            await task  # it failed to start: say why
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(task), 5)
        except TimeoutError:  # a stream handler that never noticed its client left
            server.force_exit = True
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def run_pytest(test: str, *, ci: bool) -> subprocess.CompletedProcess[str]:
    """One test of this suite in a pytest of its own, as on a laptop or (`ci`) under CI=true."""
    env = {k: v for k, v in os.environ.items() if k != "CI"} | ({"CI": "true"} if ci else {})
    return subprocess.run(  # noqa: S603 - our own interpreter and test suite
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", test],
        cwd=Path(__file__).parent.parent, env=env, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
