"""Saassy's own commands as real server processes on loopback, stopped after the test."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.runtime.conftest import require_sandbox


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def run_dev(tmp_path: Path) -> Iterator[object]:
    """Start `saassy dev` on a free port and a given data dir; stops every process it started."""
    started: list[subprocess.Popen[bytes]] = []

    def start(data_dir: Path, **extra_env: str) -> tuple[str, Path]:
        require_sandbox()  # else /ready answers 503 and the server is never ready
        port = free_port()
        log = tmp_path / f"dev-{port}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SAASSY_")}
        env.update(extra_env)
        with log.open("wb") as out:
            process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [sys.executable, "-m", "saassy.cli", "dev", "--port", str(port),
                 "--data-dir", str(data_dir)],
                cwd=tmp_path, env={**env, "PYTHONUNBUFFERED": "1"}, stdout=out, stderr=out,
            )  # fmt: skip
        started.append(process)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"saassy dev exited with {process.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                    return base, log
            except httpx.TransportError:
                pass
            time.sleep(0.1)  # polling for readiness, not synchronisation
        pytest.fail(f"saassy dev was not ready within 60 s:\n{log.read_text()}")

    yield start
    for process in started:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
