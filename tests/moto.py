"""`moto_server` on loopback: a real S3 endpoint for the storage tests, one per test run."""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.services import IN_CI, reachable

if TYPE_CHECKING:  # boto3 is imported by the tests that use S3, not by every test run
    from saassy.storage.s3 import S3Location

START_TIMEOUT_S = 60.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The endpoint URL of a `moto_server` started for this run, stopped after it."""
    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("flask") is None:
        message = "moto_server is missing: pip install 'moto[server]' (in the dev extra)"
        if IN_CI:
            pytest.fail(f"{message}; CI must run every service-backed test")
        pytest.skip(message)
    port = _free_port()
    log: Path = tmp_path_factory.mktemp("moto") / "moto_server.log"
    with log.open("wb") as output:
        server = subprocess.Popen(  # noqa: S603 - our own interpreter, fixed arguments
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not reachable("127.0.0.1", port, timeout=0.2):
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"moto_server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def location_in(endpoint: str, **options: object) -> S3Location:
    """A new, empty bucket on `endpoint` (moto takes any credentials)."""
    from saassy.storage.s3 import S3Location

    location = S3Location(
        bucket=f"saassy-{uuid.uuid4().hex[:16]}",
        endpoint_url=endpoint,
        region="us-east-1",
        access_key_id="test-key-id",
        secret_access_key="test-secret-key",
        **options,  # type: ignore[arg-type]
    )
    location.client(endpoint).create_bucket(Bucket=location.bucket)
    return location


@pytest.fixture
def s3_location(moto_server: str) -> S3Location:
    return location_in(moto_server)
