"""The Saassy server under test, in its own process (`python -m bench.server --port N`).

Configured only through SAASSY_* like a deployment; the access log is off (a deployment choice
that would otherwise print 2,000 lines per phase). Its own logging stays at the default level.
`--workers N` serves it from N processes as `saassy api --workers N` does; `--bare` serves the
floor of the submit API instead (bench/submit_path.py's bare FastAPI endpoint) and `--durable`
that endpoint storing each submission (bench/durable_floor.py), through the same `serve`
(uvicorn, its loop and HTTP protocol), so they differ only in the app.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import httpx
from fastapi import FastAPI

from bench.durable_floor import durable_app
from bench.slowed import install_start_delay_from_env
from bench.submit_path import bare_app
from saassy.app import create_app
from saassy.config import load_settings
from saassy.kit.heap import freeze_start_up
from saassy.server import serve

STARTUP_TIMEOUT_S = 240.0  # each of several workers imports the app: minutes on a busy VM
APP_FACTORY = "saassy.app:create_served_app"
BARE_FACTORY = "bench.server:served_bare_app"
DURABLE_FACTORY = "bench.server:served_durable_app"


def main() -> None:
    install_start_delay_from_env()  # a test's deliberately slowed runtime; off by default
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    floor = parser.add_mutually_exclusive_group()
    floor.add_argument("--bare", action="store_true", help="The bare FastAPI floor instead.")
    floor.add_argument("--durable", action="store_true", help="The bare floor storing each.")
    args = parser.parse_args()
    app: FastAPI | str
    if args.workers > 1:  # each worker builds its app from the environment
        app = BARE_FACTORY if args.bare else DURABLE_FACTORY if args.durable else APP_FACTORY
    elif args.bare or args.durable:
        app = bare_app() if args.bare else durable_app()
    else:
        app = create_app(load_settings())
    serve(
        app,
        host="127.0.0.1",
        port=args.port,
        workers=args.workers,
        access_log=False,
        log_level="warning",
    )


def served_bare_app() -> FastAPI:
    """The floors' factories for `--workers N`, their heaps frozen as Saassy's (kit/heap.py)."""
    app = bare_app()
    freeze_start_up()
    return app


def served_durable_app() -> FastAPI:
    app = durable_app()
    freeze_start_up()
    return app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServerProcess:
    """Starts the server, waits until it answers, stops it with SIGTERM (a graceful stop)."""

    def __init__(self, env: dict[str, str], log_path: Path, args: Sequence[str] = ()) -> None:
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self.args = list(args)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def cpu_seconds(self) -> float:
        """CPU the server's own threads used so far (its sandboxes are other processes)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rpartition(")")[2].split()
        user, system = int(fields[11]), int(fields[12])  # utime, stime (after pid, comm)
        return (user + system) / os.sysconf("SC_CLK_TCK")

    def tree_cpu_seconds(self) -> float:
        """CPU the server and its live child processes used so far (`--workers N`)."""
        return self.tree_times()[0]

    def tree_times(self) -> tuple[float, float]:
        """CPU the server and its live child processes used so far (`--workers N`), and the
        time their threads waited for a CPU while runnable (schedstat: a busy machine's share)."""
        cpu = waited = 0.0
        pending = [self.pid]
        while pending:
            pid = pending.pop()
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
                threads = list(Path(f"/proc/{pid}/task").iterdir())
                for thread in threads:
                    waited += int((thread / "schedstat").read_text().split()[1]) / 1e9
            except FileNotFoundError:  # it ended meanwhile
                continue
            cpu += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            pending.extend(int(child) for child in children)
        return cpu, waited

    def __enter__(self) -> ServerProcess:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "bench.server", "--port", str(self.port), *self.args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited at start; see {self.log_path}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the server did not answer within {STARTUP_TIMEOUT_S} s")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


if __name__ == "__main__":
    main()
