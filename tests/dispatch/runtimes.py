"""The engine suites both runtimes pass: one catalog, written for the runtime under test.

The process runtime runs a task type's `command`; the docker runtime runs an image, so there
each command becomes the CMD of an image built FROM the test images (saassy/python:test for
Python programs, the busybox base for the rest). The image is tagged by a hash of what it holds,
so it is built once per machine (a second or so: no RUN step, no registry).
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tempfile
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from docker.errors import ImageNotFound

from saassy.runtime.base import EgressGateway, Runtime
from saassy.runtime.docker import DockerRuntime
from saassy.runtime.process import ProcessRuntime
from tests.runtime.conftest import require_isolation
from tests.runtime.docker_support import BASE_IMAGE, docker_runtime, python_image
from tests.runtime.support import PYTHON

RUNTIMES = ["process", "docker"]
PROGRAM_REPOSITORY = "saassy/program"


def program_image(runtime: DockerRuntime, argv: list[str]) -> str:
    """An image whose CMD is `argv`, FROM the test image that has its interpreter."""
    base = python_image(runtime) if argv[0] == PYTHON else BASE_IMAGE
    base_id = runtime.host.client.images.get(base).id
    dockerfile = f"FROM {base}\nCMD {json.dumps(argv)}\n"
    tag = f"{PROGRAM_REPOSITORY}:{hashlib.sha256((base_id + dockerfile).encode()).hexdigest()[:16]}"
    try:
        runtime.host.client.images.get(tag)
    except ImageNotFound:
        runtime.host.client.images.build(
            fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True, network_mode="none"
        )
    return tag


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{key} = {_toml(item)}" for key, item in value.items()) + " }"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    return json.dumps(value)  # strings and numbers: JSON's spelling is TOML's too


def write_catalog(
    path: Path,
    task_types: Mapping[str, Mapping[str, Any]],
    runtime: Runtime | None,
    *,
    plans: str = 'default_plan = "small"\n[plans.small]\nname = "Small"\n',
) -> Path:
    """`task_types` (each with a `command`) as the catalog for `runtime`'s kind: a docker
    runtime gets the same programs as images."""
    tables = []
    for name, fields in task_types.items():
        fields = dict(fields)
        if isinstance(runtime, DockerRuntime):
            fields["image"] = program_image(runtime, list(fields.pop("command")))
        lines = "".join(f"{key} = {_toml(value)}\n" for key, value in fields.items())
        tables.append(f"[task_types.{name}]\n{lines}")
    path.write_text(plans + "\n".join(tables))
    return path


@asynccontextmanager
async def runtime_of(kind: str, egress: EgressGateway | None = None) -> AsyncIterator[Runtime]:
    """A real runtime of `kind` with a work root of its own (a skip, or in CI a failure, where
    this host cannot run one); what it leaves is swept at the end."""
    root = Path(tempfile.mkdtemp(prefix="saassy-sandboxes-test-"))  # 0711 once the runtime has it
    runtime: ProcessRuntime | DockerRuntime
    if kind == "docker":
        runtime = docker_runtime(work_dir=root, egress=egress)
        python_image(runtime)
    else:
        runtime = ProcessRuntime(work_dir=root, egress=egress)
        require_isolation(runtime)
    try:
        yield runtime
    finally:
        await runtime.sweep()
        if isinstance(runtime, DockerRuntime):
            runtime.close()
        shutil.rmtree(root, ignore_errors=True)
