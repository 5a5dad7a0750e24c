"""The docker runtime under test: a real dockerd and the locally built images.

Without dockerd these tests skip with one line saying what to install; under CI=true they fail.
The base image is built by the same script `.ci/run` uses (deploy/images/build-base.sh): a static
busybox, no registry. The Python image (python_image.py) adds this host's Debian Python on top,
for the suites shared with the process runtime.
"""

from __future__ import annotations

import contextlib
import functools
import io
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from docker.errors import ImageNotFound

from saassy.runtime.base import EgressGateway, Exit, Limits, SandboxSpec, Usage
from saassy.runtime.container import ContainerSandbox
from saassy.runtime.docker import DockerRuntime, DockerUnavailable
from tests.runtime.python_image import PythonImageUnavailable, build_python_image
from tests.services import IN_CI

BASE_IMAGE = "saassy/base:test"
WORKER_IMAGE = "saassy/echo:test"  # docker_catalog.toml's: its result is its input
WORKER_DOCKERFILE = f"""FROM {BASE_IMAGE}
CMD ["sh", "-c", "cat \\"$SAASSY_INPUT\\" > \\"$SAASSY_OUTPUT/result.json\\"; echo rendered"]
"""
BUILD_SCRIPT = Path(__file__).parents[2] / "deploy" / "images" / "build-base.sh"
INSTANCE = "pytest"


def _unavailable(message: str) -> None:
    if IN_CI:
        pytest.fail(f"{message}; CI must run the docker runtime's tests")
    pytest.skip(message)


@functools.cache
def _base_image_built() -> str | None:
    """None once the image exists, else why it could not be built."""
    done = subprocess.run([str(BUILD_SCRIPT), BASE_IMAGE], capture_output=True, check=False)  # noqa: S603
    return None if done.returncode == 0 else done.stderr.decode(errors="replace").strip()


def docker_runtime(
    work_dir: Path | None = None, egress: EgressGateway | None = None
) -> DockerRuntime:
    """A runtime on the local dockerd with the base image built, or a skip (a failure in CI)."""
    if shutil.which("dockerd") is None:
        _unavailable("no dockerd: apt-get install docker.io and start dockerd")
    try:
        runtime = DockerRuntime(instance=INSTANCE, work_dir=work_dir, egress=egress)
    except DockerUnavailable as exc:
        _unavailable(str(exc))
        raise
    if (why := _base_image_built()) is not None:
        _unavailable(f"cannot build {BASE_IMAGE}: {why}")
    return runtime


def python_image(runtime: DockerRuntime) -> str:
    """saassy/python:test, built once per machine (python_image.py) and checked once per test
    run, or a skip (CI: a failure)."""
    if runtime.url not in _PYTHON_IMAGES:
        try:
            _PYTHON_IMAGES[runtime.url] = build_python_image(runtime.host.client, BASE_IMAGE)
        except PythonImageUnavailable as exc:
            _unavailable(f"cannot build the Python test image: {exc}")
            raise
    return _PYTHON_IMAGES[runtime.url]


_PYTHON_IMAGES: dict[str, str] = {}  # dockerd's address: the image there


SHELL_LESS = "saassy/shell-less:test"  # the base image's static busybox, and no /bin/sh
# From the base image, not the host: a host's busybox may be missing or dynamically linked.
SHELL_LESS_DOCKERFILE = f"""FROM scratch
COPY --from={BASE_IMAGE} /bin/busybox /bin/busybox
CMD ["/bin/busybox", "true"]
"""


def shell_less_image(runtime: DockerRuntime, tag: str = SHELL_LESS) -> str:
    """An image without /bin/sh whose CMD runs: what a gated task type cannot use."""
    with contextlib.suppress(ImageNotFound):
        runtime.host.client.images.get(tag)
        return tag
    runtime.host.client.images.build(
        fileobj=io.BytesIO(SHELL_LESS_DOCKERFILE.encode()), tag=tag, rm=True, forcerm=True
    )
    return tag


def build_worker_image(runtime: DockerRuntime) -> str:
    """An image FROM the base one with a CMD of its own: no registry, a second or so."""
    with contextlib.suppress(ImageNotFound):
        runtime.host.client.images.get(WORKER_IMAGE)
        return WORKER_IMAGE
    runtime.host.client.images.build(
        fileobj=io.BytesIO(WORKER_DOCKERFILE.encode()), tag=WORKER_IMAGE, rm=True
    )
    return WORKER_IMAGE


def shell_spec(
    workspace: Path, script: str, name: str = "docker-test", **options: object
) -> SandboxSpec:
    """`sh -c script` in the base image, with the test's workspace as input and output."""
    workspace.mkdir(parents=True, exist_ok=True)
    (workspace / "input.json").write_text('{"n": 7}')
    (workspace / "output").mkdir(exist_ok=True)
    limits = options.pop("limits", Limits(memory_mb=128, cpus=1, pids=64, disk_mb=32, timeout_s=30))
    return SandboxSpec(
        name=name,
        image=BASE_IMAGE,
        argv=("sh", "-c", script),
        input_file=workspace / "input.json",
        output_dir=workspace / "output",
        events_file=workspace / "events.jsonl",
        limits=limits,
        **options,  # type: ignore[arg-type]
    )


@dataclass
class Ran:
    exit: Exit
    usage: Usage
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)


async def run(runtime: DockerRuntime, spec: SandboxSpec) -> Ran:
    """Start, read all output, wait, measure, clean up."""
    async with started(runtime, spec) as handle:
        stdout: list[str] = []
        stderr: list[str] = []
        async for line in handle.output():
            (stdout if line.stream == "stdout" else stderr).append(line.data.decode())
        exit_ = await handle.wait()
        return Ran(exit_, await handle.usage(), stdout, stderr)


@asynccontextmanager
async def started(runtime: DockerRuntime, spec: SandboxSpec) -> AsyncIterator[ContainerSandbox]:
    handle = await runtime.start(spec)
    assert isinstance(handle, ContainerSandbox)
    try:
        yield handle
    finally:
        await handle.cleanup()
