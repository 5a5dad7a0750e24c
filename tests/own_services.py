"""Redis and PostgreSQL servers a test starts for itself on a free loopback port, so it can stop
and restart them without disturbing the shared ones other tests use."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.processes import free_port
from tests.services import IN_CI, reachable

START_TIMEOUT_S = 30


def require_binary(path: str | None, what: str) -> str:
    """Skip when a binary is absent on a laptop; in CI its absence is a failure."""
    if path is not None and os.access(path, os.X_OK):
        return path
    message = f"{what} is not installed"
    if IN_CI:
        pytest.fail(f"{message}; CI must run every service-backed test")
    pytest.skip(message)


def wait_until_reachable(port: int, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not reachable("127.0.0.1", port, timeout=0.2):
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server on port {port} exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing listens on port {port} after {START_TIMEOUT_S} s")
        time.sleep(0.05)


@dataclass
class OwnRedis:
    """`redis-server` without persistence: a restart loses every key, as a crash would."""

    binary: str
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - Debian's redis-server
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until_reachable(self.port, self.process)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()  # a crash, not a shutdown: nothing is saved anyway
            self.process.wait()


def start_redis() -> OwnRedis:
    redis = OwnRedis(require_binary(shutil.which("redis-server"), "redis-server"))
    redis.start()
    return redis


def postgresql_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    return Path(found[-1]).parent if found else None


def _version(path: str) -> int:
    digits = Path(path).parent.parent.name
    return int(digits) if digits.isdigit() else 0


@dataclass
class OwnPostgreSQL:
    """A cluster of its own in a temporary directory; initdb refuses root, so as root it runs
    as the `postgres` user."""

    bin: Path
    root: Path
    port: int = field(default_factory=free_port)

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *argv: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run(  # noqa: S603 - PostgreSQL's own tools
            [*prefix, *argv], check=True, capture_output=True, timeout=60
        )

    def init(self) -> None:
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
                  "-A", "trust", "--no-sync", "-E", "UTF8")  # fmt: skip

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options,
                  "-l", str(self.root / "server.log"), "-w", "start")  # fmt: skip
        wait_until_reachable(self.port)

    def stop(self, mode: str = "fast") -> None:
        """`fast` ends every session (a crash for the clients), `immediate` the server too."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def create_database(self, name: str) -> str:
        self._run(str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                  "-U", "postgres", name)  # fmt: skip
        return self.url(name)

    def remove(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.CalledProcessError):
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def start_postgresql() -> OwnPostgreSQL:
    bin_dir = postgresql_bin()
    require_binary(str(bin_dir / "initdb") if bin_dir else None, "PostgreSQL (initdb)")
    assert bin_dir is not None
    root = Path(tempfile.mkdtemp(prefix="saassy-pg-"))
    if os.geteuid() == 0:  # the cluster's files belong to the user that runs it
        shutil.chown(root, "postgres", "postgres")
    server = OwnPostgreSQL(bin_dir, root)
    try:
        server.init()
        server.start()
    except BaseException:
        server.remove()
        raise
    return server
