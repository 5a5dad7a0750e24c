"""deploy/Dockerfile builds without a registry or PyPI, and the image's `saassy api` is ready.

The base is a Debian bookworm made here with debootstrap, the Python packages come from
./wheelhouse (deploy/images/prepare-image-build.sh makes both), and the image runs with the
compose file's production settings: Celery executor, Redis, S3 (moto_server), its SQLite
database in the data dir. `.ci/run` starts the preparation at its beginning and names its
directory in SAASSY_TEST_IMAGE_PREPARATION; without it the test prepares first (~2.5 min once).
Without dockerd or debootstrap the test skips, saying what to install; under CI=true it fails.
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.moto import location_in
from tests.services import IN_CI, REDIS_URL, require

ROOT = Path(__file__).resolve().parents[1]
PREPARE = ROOT / "deploy" / "images" / "prepare-image-build.sh"
BASE_SCRIPT = "deploy/images/build-python-base.sh"
BASE_IMAGE = "saassy/bookworm-python:local"
IMAGE = "saassy:pytest"
PREPARATION = os.environ.get("SAASSY_TEST_IMAGE_PREPARATION")
PREPARATION_WAIT_S = 600.0
BUILD_TIMEOUT_S = 900.0
READY_TIMEOUT_S = 90.0
# Forwarded to the build (and its apt and pip) when this machine reaches the network through one.
PROXY_VARIABLES = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")

pytestmark = pytest.mark.timeout(PREPARATION_WAIT_S + BUILD_TIMEOUT_S + 2 * READY_TIMEOUT_S)


def unavailable(message: str) -> None:
    if IN_CI:
        pytest.fail(f"{message}; CI must build and start the image")
    pytest.skip(message)


def docker(*args: str, timeout: float = 120, **options: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - docker with arguments of our own
        ["docker", *args],  # noqa: S607 - docker from PATH, as an operator runs it
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **options,  # type: ignore[call-overload]
    )


def tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


def require_tools() -> None:
    if shutil.which("docker") is None or docker("info", timeout=30).returncode != 0:
        unavailable("no dockerd: apt-get install docker.io and start dockerd")
    if PREPARATION is not None or docker("image", "inspect", BASE_IMAGE).returncode == 0:
        return
    if shutil.which("debootstrap") is None:
        unavailable("no debootstrap for the image's base: apt-get install debootstrap")
    if os.geteuid() != 0:
        unavailable(f"debootstrap needs root: run `sudo {BASE_SCRIPT}` once")


def wait_for_preparation(directory: Path) -> None:
    """The run `.ci/run` started early: its `status` file appears when it ends."""
    status, log = directory / "status", directory / "log"
    deadline = time.monotonic() + PREPARATION_WAIT_S
    while not status.exists():
        if time.monotonic() > deadline:
            pytest.fail(
                f"the image build's preparation (started by .ci/run) did not finish within "
                f"{PREPARATION_WAIT_S:.0f} s:\n{tail(log.read_text(errors='replace'))}"
            )
        time.sleep(1)
    if status.read_text().strip() != "0":
        pytest.fail(
            f"the image build's preparation failed:\n{tail(log.read_text(errors='replace'))}"
        )


def prepare() -> None:
    if PREPARATION is not None:
        wait_for_preparation(Path(PREPARATION))
        return
    done = subprocess.run(  # noqa: S603 - our own script
        [str(PREPARE), BASE_IMAGE], capture_output=True, text=True, timeout=900, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"{PREPARE.name} failed:\n{tail(done.stdout + done.stderr)}")


def build_command() -> list[str]:
    """The offline build docs/deploy.md shows; the host's network for the image's apt."""
    proxies = [f"--build-arg={name}" for name in PROXY_VARIABLES if name in os.environ]
    return [
        "build",
        "--network=host",
        "--file=deploy/Dockerfile",
        f"--build-arg=BASE={BASE_IMAGE}",
        "--build-arg=PIP_FIND_LINKS=/src/wheelhouse",
        "--build-arg=PIP_NO_INDEX=1",
        *proxies,
        f"--tag={IMAGE}",
        ".",
    ]


@pytest.fixture(scope="session")
def built_image() -> str:
    require_tools()
    prepare()
    done = docker(*build_command(), cwd=ROOT, timeout=BUILD_TIMEOUT_S)
    assert done.returncode == 0, f"docker build failed:\n{tail(done.stdout + done.stderr)}"
    return IMAGE


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def production_env(moto_server: str) -> dict[str, str]:
    """The compose file's settings, pointed at this machine's Redis and moto_server."""
    redis = urlsplit(REDIS_URL)
    require("Redis", redis.hostname or "127.0.0.1", redis.port or 6379)
    bucket = location_in(moto_server)
    return {
        "SAASSY_DATABASE_URL": "sqlite:////var/lib/saassy/saassy.db",
        "SAASSY_SECRET_KEY": secrets.token_urlsafe(48),
        "SAASSY_VAULT_KEYS": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "SAASSY_EXECUTOR": "celery",
        "SAASSY_BROKER_URL": REDIS_URL,
        "SAASSY_REDIS_URL": REDIS_URL,
        "SAASSY_REDIS_PREFIX": f"image-{uuid.uuid4().hex[:12]}",
        "SAASSY_STORAGE": "s3",
        "SAASSY_S3_BUCKET": bucket.bucket,
        "SAASSY_S3_ENDPOINT_URL": moto_server,
        "SAASSY_S3_REGION": bucket.region,
        "SAASSY_S3_ACCESS_KEY_ID": bucket.access_key_id,
        "SAASSY_S3_SECRET_ACCESS_KEY": bucket.secret_access_key,
    }


@pytest.fixture
def data_volume() -> Iterator[str]:
    """A volume for /var/lib/saassy: docker gives it the image's owner (uid 10001) at first use."""
    name = f"saassy-pytest-{uuid.uuid4().hex[:12]}"
    assert docker("volume", "create", name).returncode == 0
    yield name
    docker("volume", "rm", "--force", name)


def run_args(volume: str, env: dict[str, str]) -> list[str]:
    # Values come from docker's own environment (`-e NAME`): no secret on a command line.
    names = [f"--env={name}" for name in env]
    return ["run", "--network=host", f"--volume={volume}:/var/lib/saassy", *names]


def test_the_image_builds_offline_and_its_api_becomes_ready(
    built_image: str, production_env: dict[str, str], data_volume: str
) -> None:
    env = os.environ | production_env
    args = run_args(data_volume, production_env)
    migrated = docker(*args, "--rm", built_image, "db", "upgrade", env=env)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    port = free_port()
    started = docker(
        *args, "--detach", built_image, "api", "--host", "127.0.0.1", "--port", str(port), env=env
    )
    assert started.returncode == 0, started.stderr
    container = started.stdout.strip()
    try:
        body = ready_body(container, f"http://127.0.0.1:{port}/ready")
    finally:
        logged = docker("logs", container)
        docker("rm", "--force", container)
    assert body["status"] == "ready", logged.stdout + logged.stderr
    assert body["database"] == "sqlite"
    assert body["events"].startswith("redis")
    assert "isolation" not in body  # the API runs no sandboxes: workers do


def ready_body(container: str, url: str) -> dict[str, str]:
    deadline = time.monotonic() + READY_TIMEOUT_S
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url, timeout=2)
            if response.status_code == 200:
                body: dict[str, str] = response.json()
                return body
            last = f"{response.status_code} {response.text}"
        except httpx.TransportError as exc:
            last = repr(exc)
        running = docker("inspect", "--format={{.State.Running}}", container).stdout.strip()
        if running != "true":
            logs = docker("logs", container)
            pytest.fail(f"saassy api exited:\n{tail(logs.stdout + logs.stderr)}")
        time.sleep(0.25)
    pytest.fail(f"/ready did not answer 200 within {READY_TIMEOUT_S:.0f} s: {last}")
